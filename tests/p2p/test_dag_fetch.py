"""``p2p.fetch_dag`` and ``p2p.dial_origins`` over real flat-file blockstores: the "network" is
a second store the blocks are copied from (bitswap between daemons is tested in
tests/integration), so what is checked here is the fetch's own contract: what it reads
locally, what it fetches and stores, its deadline, and the origins it dials."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import trio

import dag
from dag import CID
from p2p import DagFetchError, DialRefused, P2PError, dial_origins, fetch_dag


class StoreNetwork:
    """Serves blocks from ``elsewhere`` (never those in ``withheld``) and records dials."""

    def __init__(self, elsewhere: dag.Blockstore, withheld: frozenset[CID] = frozenset()) -> None:
        self.elsewhere = elsewhere
        self.withheld = withheld
        self.asked: list[CID] = []
        self.dialled: list[str] = []

    async def connect(self, addr: str) -> str:
        if "unreachable" in addr:
            raise P2PError(f"cannot reach {addr}")
        self.dialled.append(addr)
        return "peer"

    async def get_block(self, cid: CID, *, timeout: float = 60.0) -> bytes:
        self.asked.append(cid)
        if cid in self.withheld:
            await trio.sleep(timeout)  # no peer has it: the caller's deadline ends the wait
        return await self.elsewhere.get(cid)


@dataclass
class Source:
    """A :class:`p2p.DagSource`: the store fetched into, and the "network"."""

    store: dag.Blockstore
    network: StoreNetwork | None


@pytest.fixture
async def stores(tmp_path):
    here = dag.FlatFsBlockstore(tmp_path / "here")
    elsewhere = dag.FlatFsBlockstore(tmp_path / "elsewhere")
    source = tmp_path / "noise.bin"
    source.write_bytes(os.urandom(20_000))
    added = await dag.import_file(elsewhere, source, dag.ImportParams(chunk_size=1024))
    return here, elsewhere, added.cid


async def _blocks(store: dag.Blockstore, root: CID) -> list[CID]:
    return [cid async for cid, _ in dag.walk_dag(store, [root])]


async def test_missing_blocks_are_fetched_and_stored_and_present_ones_read(stores):
    here, elsewhere, root = stores
    every = await _blocks(elsewhere, root)
    await here.put(dag.Block(every[1], await elsewhere.get(every[1])))  # one leaf already here
    network = StoreNetwork(elsewhere)
    seen: list[tuple[int, int]] = []
    report = await fetch_dag(
        Source(here, network),
        root,
        timeout=30,
        max_parallel=4,
        progress=lambda d, k: seen.append((d, k)),
    )
    assert report.blocks == len(every) == 21 and report.fetched == len(every) - 1
    assert report.bytes == sum([len(await elsewhere.get(c)) for c in every])
    assert every[1] not in network.asked and len(network.asked) == len(every) - 1
    assert await _blocks(here, root) == every  # all of it is in the store now
    assert seen[-1] == (len(every), len(every))
    again = await fetch_dag(Source(here, network), root, timeout=30)  # nothing left to fetch
    assert (again.blocks, again.fetched) == (len(every), 0)
    assert (
        await fetch_dag(Source(here, None), root, timeout=30) == again
    )  # no network needed either


async def test_what_cannot_be_fetched_is_a_dag_fetch_error(stores):
    here, elsewhere, root = stores
    with pytest.raises(DagFetchError, match="is missing and the p2p network is off"):
        await fetch_dag(Source(here, None), root, timeout=30)
    leaf = (await _blocks(elsewhere, root))[-1]
    slow = StoreNetwork(elsewhere, withheld=frozenset({leaf}))
    with pytest.raises(DagFetchError, match=r"not every block arrived within 0\.5 s"):
        await fetch_dag(Source(here, slow), root, timeout=0.5)
    assert not await here.has(leaf) and await here.has(root)  # what came is kept (resumable)
    with pytest.raises(ValueError, match="timeout must be positive"):
        await fetch_dag(Source(here, slow), root, timeout=0)


async def test_origins_are_dialled_through_the_check_and_refusals_reported(stores):
    here, elsewhere, root = stores
    network = StoreNetwork(elsewhere, withheld=frozenset({root}))
    public, private, down = "/ip4/8.8.8.8/tcp/1", "/ip4/10.0.0.1/tcp/1", "/ip4/9.9.9.9/unreachable"

    async def check(addr: str) -> str:
        if "10.0.0.1" in addr:
            raise DialRefused(f"{addr}: a private address")
        return addr + "/checked"

    refused: list[str] = []
    dialled = await dial_origins(
        network, [public, private, down, public], check_origin=check, refused=refused
    )
    assert dialled == 1 and network.dialled == [public + "/checked"]  # each origin once
    assert refused == [f"{private}: a private address"]
    network.dialled.clear()
    with pytest.raises(DagFetchError, match=r"\(not dialled: /ip4/10\.0\.0\.1/tcp/1: a private"):
        await fetch_dag(
            Source(here, network), root, origins=[private, public], timeout=0.5, check_origin=check
        )
    assert network.dialled == [public + "/checked"]
    with pytest.raises(ValueError, match="need a check_origin"):
        await fetch_dag(Source(here, network), root, origins=[public], timeout=1)
