"""Gateway protection and observation: the pure per-client limits (webui/client_limits.py),
then the real gateway app served by hypercorn on 127.0.0.1 (tests/webui/test_gateway.py's
``running_gateway``) answering 429 with ``Retry-After``, telling observers what it sent (also
for aborted streams), and holding the served root in the store while a body streams.

Every test client connects from 127.0.0.1, so "other clients" are told apart only through
``X-Forwarded-For``, which counts only when the gateway is told to trust it. Loopback clients
are limited like any other (behind a local reverse proxy every client is loopback)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
import trio

import dag
from tests.harness.gateway import running_gateway
from webui import ClientLimits, GatewayEvent, client_address

# -- ClientLimits (pure) -------------------------------------------------------------------


def test_a_client_gets_its_burst_then_waits_for_a_token() -> None:
    limits = ClientLimits(rate_per_s=0.5, burst=3)  # 30 a minute, a token every 2 s
    assert [limits.check("a", 10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.check("a", 10.0) == pytest.approx(2.0)
    assert limits.check("a", 11.0) == pytest.approx(1.0)  # the refused request cost nothing
    assert limits.check("a", 12.0) == 0.0
    assert limits.retry_after(0.2) == 1 and limits.retry_after(1.01) == 2


def test_clients_have_separate_buckets() -> None:
    limits = ClientLimits(rate_per_s=1.0, burst=1)
    assert limits.check("a", 0.0) == 0.0
    assert limits.check("a", 0.0) > 0
    assert limits.check("b", 0.0) == 0.0  # a's flood does not touch b


def test_least_recently_seen_clients_are_forgotten_first() -> None:
    limits = ClientLimits(rate_per_s=0.001, burst=1, max_clients=2)
    assert limits.check("a", 0.0) == 0.0
    assert limits.check("b", 0.0) == 0.0
    assert limits.check("a", 0.0) > 0  # a is now the most recently seen
    assert limits.check("c", 0.0) == 0.0  # evicts b, not a
    assert len(limits) == 2
    assert limits.check("a", 0.0) > 0  # a's empty bucket was kept
    assert limits.check("b", 0.0) == 0.0  # b comes back with a full bucket


def test_limits_from_the_config_figures() -> None:
    assert ClientLimits.per_minute(0, 120) is None  # 0: unlimited
    limits = ClientLimits.per_minute(600, 120)
    assert limits is not None and limits.rate_per_s == 10.0 and limits.burst == 120
    with pytest.raises(ValueError, match="requests_per_minute"):
        ClientLimits.per_minute(-1, 10)
    with pytest.raises(ValueError, match="burst"):
        ClientLimits(1.0, 0)


def test_the_client_is_the_peer_unless_a_proxy_is_trusted() -> None:
    forwarded = "203.0.113.7, 10.0.0.1"
    assert client_address("127.0.0.1", forwarded, trust_forwarded_for=False) == "127.0.0.1"
    assert client_address("127.0.0.1", forwarded, trust_forwarded_for=True) == "203.0.113.7"
    assert client_address("127.0.0.1", "not-an-ip", trust_forwarded_for=True) == "127.0.0.1"
    assert client_address("127.0.0.1", None, trust_forwarded_for=True) == "127.0.0.1"
    assert client_address(None, None, trust_forwarded_for=False) == "unknown"


# -- the gateway app -----------------------------------------------------------------------

CHUNK = 4096
SIZE = 64 * CHUNK + 100


@pytest.fixture
async def work(node, tmp_path) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "noise.bin"
    path.write_bytes(data)
    added = await node.add_file(path, params=dag.ImportParams(chunk_size=CHUNK))
    return added.asset.cid, data


async def test_over_its_rate_a_client_gets_429_and_others_do_not(node, work) -> None:
    cid, _ = work
    limiter = ClientLimits(rate_per_s=1 / 60, burst=2)  # one token a minute after the burst
    async with running_gateway(node, limiter=limiter) as client:
        assert [(await client.head(f"/ipfs/{cid}")).status_code for _ in range(2)] == [200, 200]
        refused = await client.get(f"/ipfs/{cid}")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.text.count("\n") == 1 and "too many requests from 127.0.0.1" in refused.text
        # Not trusted: X-Forwarded-For is ignored, it is still 127.0.0.1 over its rate.
        spoofed = await client.get(f"/ipfs/{cid}", headers={"X-Forwarded-For": "198.51.100.1"})
        assert spoofed.status_code == 429


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(node, work) -> None:
    cid, _ = work
    limiter = ClientLimits(rate_per_s=1 / 60, burst=1)
    async with running_gateway(node, limiter=limiter, trust_forwarded_for=True) as client:
        one = {"X-Forwarded-For": "198.51.100.1"}
        assert (await client.head(f"/ipfs/{cid}", headers=one)).status_code == 200
        assert (await client.head(f"/ipfs/{cid}", headers=one)).status_code == 429
        two = {"X-Forwarded-For": "198.51.100.2, 127.0.0.1"}
        assert (await client.head(f"/ipfs/{cid}", headers=two)).status_code == 200
        assert (await client.head(f"/ipfs/{cid}")).status_code == 200  # the proxy itself


async def test_observers_hear_every_response_with_the_bytes_sent(node, work) -> None:
    cid, data = work
    events: list[GatewayEvent] = []

    def broken(event: GatewayEvent) -> None:
        raise RuntimeError("an observer bug must not break a response")

    limiter = ClientLimits(rate_per_s=1 / 60, burst=3)
    async with running_gateway(node, observers=[broken, events.append], limiter=limiter) as client:
        whole = await client.get(f"/ipfs/{cid}")
        part = await client.get(f"/ipfs/{cid}", headers={"Range": "bytes=10-19"})
        head = await client.head(f"/ipfs/{cid}")
        limited = await client.get(f"/ipfs/{cid}")
    assert whole.content == data and part.content == data[10:20]
    assert (head.status_code, limited.status_code) == (200, 429)
    assert [(e.method, e.status, e.bytes_sent) for e in events] == [
        ("GET", 200, SIZE),
        ("GET", 206, 10),
        ("HEAD", 200, 0),
        ("GET", 429, len(limited.content)),
    ]
    assert all(e.root == cid and e.client == "127.0.0.1" and e.seconds >= 0 for e in events)


class _Holds:
    """Records the gateway's ``store.hold`` calls (an instance attribute on the real store)."""

    def __init__(self) -> None:
        self.active = 0
        self.roots: list[str] = []

    @contextlib.contextmanager
    def __call__(self, *roots: Any) -> Iterator[None]:
        self.roots.extend(dag.cid_to_str(r) for r in roots)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


async def test_the_root_is_held_while_the_body_streams_and_released_after(node, tmp_path) -> None:
    data = os.urandom(16 << 20)  # more than loopback's socket buffers hold
    (tmp_path / "big.bin").write_bytes(data)
    cid = (await node.add_file(tmp_path / "big.bin")).asset.cid
    holds = _Holds()
    node.store.hold = holds  # the real store; only its hold is observed
    done = trio.Event()
    events: list[GatewayEvent] = []

    def observe(event: GatewayEvent) -> None:
        events.append(event)
        done.set()

    async with running_gateway(node, observers=[observe]) as client:
        async with client.stream("GET", f"/ipfs/{cid}") as response:
            first = await response.aiter_raw(CHUNK).__anext__()  # then hang up
            assert first == data[: len(first)]
            assert holds.active == 1 and holds.roots == [cid]  # still streaming: held
        # The client hung up early: the server aborts the stream, releases, reports.
        with trio.fail_after(20):
            await done.wait()
        assert holds.active == 0
        assert events[0].status == 200 and 0 < events[0].bytes_sent < len(data)
        done = trio.Event()
        assert (await client.get(f"/ipfs/{cid}")).content == data
        with trio.fail_after(20):
            await done.wait()
    assert holds.active == 0 and holds.roots == [cid, cid]
    assert events[1].bytes_sent == len(data)
