"""The gateway's ``fetch_missing`` hook (daemon/gateway_fetch.py): its pure token bucket, its
bounds (rate, concurrency, deadline) over a stand-in network, and real fetches over py-libp2p
from a real ``artdag daemon`` on 127.0.0.1, served byte-identical through ``/ipfs/<cid>``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import dag
from daemon.config import load_config
from daemon.core.gateway_fetch import TokenBucket, make_fetch_missing
from daemon.core.network import run_network
from daemon.core.node import Node
from daemon.services import open_services
from p2p.bitswap import BlockUnavailable
from p2p.network import Network
from tests.harness.daemons import DaemonProcess, daemon_line, wait_until
from tests.harness.gateway import running_gateway

# -- the token bucket (pure) -------------------------------------------------------------------


def test_bucket_starts_full_and_refuses_beyond_its_capacity() -> None:
    bucket = TokenBucket(capacity=3, rate=1.0)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(10.0) == pytest.approx(1.0)


def test_bucket_refills_at_its_rate_up_to_its_capacity() -> None:
    bucket = TokenBucket(capacity=2, rate=0.5)  # one token every 2 s
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert not bucket.take(1.9)
    assert bucket.take(2.0)
    assert not bucket.take(2.0)
    assert bucket.take(100.0) and bucket.take(100.0)  # a long pause refills only to capacity
    assert not bucket.take(100.0)
    assert bucket.wait_time(100.0, 2) == pytest.approx(4.0)


def test_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(capacity=1, rate=1.0)
    assert bucket.take(50.0)
    assert not bucket.take(10.0)  # earlier reading: no refill, and no negative refill either
    assert bucket.tokens == 0
    assert bucket.take(51.0)


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_bucket_rejects_bad_parameters(capacity: float, rate: float) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(capacity=capacity, rate=rate)


# -- the hook over a stand-in network ----------------------------------------------------------


class StandInNetwork:
    """Stands in for ``p2p.network.Network`` where the test needs to control what "the
    network" does (hold a fetch open, never answer, answer wrong bytes), which real peers
    cannot be made to do on cue. It has the one method the hook uses, ``get_block``, and
    like the real one it serves from ``blocks`` and raises BlockUnavailable after timeout."""

    def __init__(self, blocks: dict[dag.CID, bytes], store: dag.Blockstore | None = None) -> None:
        self.blocks = blocks
        self.store = store  # when set, delivered blocks are stored first, as bitswap does
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = trio.Event()
        self.hold = False

    async def get_block(self, cid: dag.CID, *, timeout: float = 60.0) -> bytes:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            with trio.fail_after(timeout):
                if self.hold:
                    await self.release.wait()
                if cid not in self.blocks:
                    await trio.sleep_forever()
        except trio.TooSlowError:
            raise BlockUnavailable(cid, [], timeout) from None
        finally:
            self.in_flight -= 1
        data = self.blocks[cid]
        if self.store is not None:
            await self.store.put(dag.Block.checked(cid, data))
        return data


def some_blocks(n: int) -> dict[dag.CID, bytes]:
    blocks = [dag.Block.encode(os.urandom(100), codec="raw") for _ in range(n)]
    return {b.cid: b.data for b in blocks}


async def test_no_network_no_hook(node: Node) -> None:
    assert make_fetch_missing(node.store, None, node.config.gateway) is None


async def test_a_fetched_block_is_stored_verified_and_not_pinned(node: Node) -> None:
    blocks = some_blocks(2)
    network = StandInNetwork(blocks)
    fetch = make_fetch_missing(node.store, network, node.config.gateway)
    assert fetch is not None
    for cid, data in blocks.items():
        assert await fetch(cid)
        assert await node.store.get(cid) == data
    assert await node.store.pins() == []
    assert fetch.stats.fetched == 2  # type: ignore[attr-defined]


async def test_wrong_bytes_are_not_stored(node: Node) -> None:
    good = dag.Block.encode(b"the real bytes", codec="raw")
    network = StandInNetwork({good.cid: b"other bytes"})
    fetch = make_fetch_missing(node.store, network, node.config.gateway)
    assert fetch is not None
    assert not await fetch(good.cid)
    assert not await node.store.has(good.cid)


async def test_over_the_rate_cap_answers_false_without_asking_the_network(node: Node) -> None:
    network = StandInNetwork(some_blocks(5))
    now = [0.0]
    fetch = make_fetch_missing(
        node.store, network, node.config.gateway, max_blocks_per_minute=3, clock=lambda: now[0]
    )
    assert fetch is not None
    results = [await fetch(cid) for cid in network.blocks]
    assert results == [True, True, True, False, False]
    assert network.calls == 3
    now[0] = 20.0  # 3 a minute: one token back after 20 s
    fourth = list(network.blocks)[3]
    assert await fetch(fourth)
    assert network.calls == 4


async def test_concurrency_is_capped(node: Node) -> None:
    network = StandInNetwork(some_blocks(6))
    network.hold = True
    fetch = make_fetch_missing(node.store, network, node.config.gateway, max_concurrent=2)
    assert fetch is not None
    results: list[bool] = []

    async def one(cid: dag.CID) -> None:
        results.append(await fetch(cid))

    async with trio.open_nursery() as nursery:
        for cid in network.blocks:
            nursery.start_soon(one, cid)
        await trio.testing.wait_all_tasks_blocked()
        assert network.in_flight == 2  # the other four wait for a slot
        network.release.set()
    assert results == [True] * 6
    assert network.most_in_flight == 2


async def test_the_deadline_bounds_waiting_for_a_slot_and_the_fetch(node: Node) -> None:
    unknown = dag.Block.encode(b"nobody has this", codec="raw").cid
    network = StandInNetwork({})
    fetch = make_fetch_missing(
        node.store, network, node.config.gateway, max_concurrent=1, timeout=0.3
    )
    assert fetch is not None
    results: list[bool] = []

    async def one() -> None:
        results.append(await fetch(unknown))

    with trio.fail_after(10):  # a hang would be the failure; 2 x 0.3 s is the expectation
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)  # waits for the slot, and its deadline runs meanwhile
    assert results == [False, False]
    assert network.calls <= 2


async def test_bad_bounds_are_refused(node: Node) -> None:
    network = StandInNetwork({})
    with pytest.raises(ValueError, match="max_concurrent"):
        make_fetch_missing(node.store, network, node.config.gateway, max_concurrent=0)
    with pytest.raises(ValueError, match="timeout"):
        make_fetch_missing(node.store, network, node.config.gateway, timeout=0)
    with pytest.raises(ValueError, match="max_blocks_per_minute"):
        make_fetch_missing(node.store, network, node.config.gateway, max_blocks_per_minute=0)


# -- real peers ---------------------------------------------------------------------------------

CHUNK = 64 * 1024
SIZE = 3 * 1024 * 1024 + 777  # 49 leaves of 64 KiB under one root


def gateway_over(node: Node, network: Network, **options: Any) -> Any:
    """The gateway of ``node`` using the bounded fetcher over ``network``, on a real server."""
    fetch_missing = make_fetch_missing(node.store, network, node.config.gateway, **options)
    return running_gateway(node, fetch_missing=fetch_missing)


@pytest.mark.daemon
@pytest.mark.slow
async def test_a_file_on_another_daemon_is_fetched_and_served_byte_identical(
    tmp_path: Path,
) -> None:
    """Daemon A is a real ``artdag daemon`` process; B is a node in this process with the real
    network (py-libp2p, bitswap) and the gateway using the hook, so this runs whether or not
    daemon/api.py wires the hook in."""
    data = os.urandom(SIZE)
    a = DaemonProcess(tmp_path / "a", ARTDAG_CHUNK_SIZE=str(CHUNK)).start()
    try:
        cid = a.add_bytes(data, "far.bin")["cid"]
        env = {"ARTDAG_LISTEN": "/ip4/127.0.0.1/tcp/0", "ARTDAG_MDNS": "false"}
        config = load_config(tmp_path / "b", environ=env)
        async with (
            open_services(config, with_network=True) as services,
            trio.open_nursery() as nursery,
        ):
            node, network = services.node, services.network
            assert network is not None
            await run_network(nursery, network)
            await network.connect(a.p2p_addr)
            async with gateway_over(node, network, max_concurrent=4, timeout=20) as client:
                mid = SIZE // 2
                ranged = await client.get(
                    f"/ipfs/{cid}", headers={"Range": f"bytes={mid}-{mid + 99_999}"}
                )
                assert ranged.status_code == 206
                assert ranged.content == data[mid : mid + 100_000]
                whole = await client.get(f"/ipfs/{cid}")
                assert whole.status_code == 200
                assert whole.content == data
            assert await node.store.pins() == []  # cached, not kept
            nursery.cancel_scope.cancel()
    finally:
        a.stop()


@pytest.mark.daemon
@pytest.mark.slow
def test_daemon_b_gateway_serves_what_only_daemon_a_has(tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    with daemon_line(tmp_path, 2, ARTDAG_CHUNK_SIZE=str(CHUNK)) as (a, b):
        wait_until(lambda: len(a.peers()) >= 1, 30, "a and b to connect")
        cid = a.add_bytes(data, "far.bin")["cid"]
        response = b.api("GET", f"/ipfs/{cid}")
        assert response.status_code == 200
        assert response.content == data
