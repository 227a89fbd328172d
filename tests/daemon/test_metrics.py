"""Prometheus metrics (daemon/metrics.py, daemon/api_metrics.py) of a real ``artdag daemon``
on 127.0.0.1: ``/metrics`` parses with prometheus_client's own parser, and the gateway
counters and histograms move by exactly what the test did between two scrapes; gossip's
message hook (what the gossip counters count) on two real py-libp2p hosts.

Who may read ``/metrics`` is a pure decision (``metrics_allowed``) tested on its own: every
request in a test comes from 127.0.0.1, which is always allowed, so a stranger's 403 cannot be
produced over the wire here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from daemon.http.metrics import metrics_allowed
from tests.harness.daemons import DaemonProcess

pytestmark = pytest.mark.daemon

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client, **kwargs: object) -> Samples:
    response = client.get("/metrics", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    running = DaemonProcess(tmp_path_factory.mktemp("metrics") / "home").start()
    try:
        yield running
    finally:
        running.stop()


def test_gateway_requests_move_the_counters_and_histograms_by_what_was_sent(
    daemon: DaemonProcess,
) -> None:
    data = os.urandom(300_000)
    cid = daemon.add_bytes(data, "noise.bin")["cid"]
    with daemon.http() as client, httpx.Client(base_url=daemon.api_url, timeout=30) as anonymous:
        before = scrape(anonymous)  # loopback: no token needed
        for _ in range(3):
            assert anonymous.get(f"/ipfs/{cid}").content == data
        assert anonymous.head(f"/ipfs/{cid}").status_code == 200
        assert anonymous.get(f"/ipfs/{cid}", headers={"Range": "bytes=0-99"}).status_code == 206
        bad = anonymous.get("/ipfs/not-a-cid")
        assert bad.status_code == 400
        assert client.get("/api/v1/assets").status_code == 200
        after = scrape(client)  # with the token too

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("artdag_gateway_requests_total", method="GET", code="2xx") == 4
    assert moved("artdag_gateway_requests_total", method="HEAD", code="2xx") == 1
    assert moved("artdag_gateway_requests_total", method="GET", code="4xx") == 1
    assert moved("artdag_gateway_sent_bytes_total") == 3 * len(data) + 100 + len(bad.content)
    assert moved("artdag_gateway_response_seconds_count") == 6
    assert moved("artdag_gateway_response_seconds_bucket", le="+Inf") == 6
    assert moved("artdag_gateway_response_seconds_sum") > 0
    route = {"method": "GET", "route": "/api/v1/assets"}
    assert moved("artdag_api_request_seconds_count", **route) == 1

    # Gauges read at the scrape: the asset (one raw leaf with 1 MiB chunks) and its signed
    # record, both pinned "local".
    assert value(after, "artdag_pins", reason="local") == 2
    assert value(after, "artdag_pinned_cids") == 2
    assert value(after, "artdag_store_blocks") >= 2
    assert value(after, "artdag_store_bytes") >= len(data)
    assert value(after, "artdag_assets") == 1
    assert value(after, "artdag_peers") == 0
    info = [key for key in after if key[0] == "artdag_info"]
    assert len(info) == 1 and ("did", daemon.info["did"]) in info[0][1]
    # Adding the asset gossiped our new repo head: one message out.
    assert value(after, "artdag_gossip_messages_total", direction="out", topic="/artdag/1/heads")
    assert value(after, "artdag_deliveries", state="queued") == 0


@pytest.mark.parametrize(
    ("client", "authorization", "public", "allowed"),
    [
        ("127.0.0.1", None, False, True),
        ("::1", None, False, True),
        ("203.0.113.9", None, False, False),
        ("203.0.113.9", "Bearer wrong", False, False),
        ("203.0.113.9", "Bearer sekrit", False, True),
        ("203.0.113.9", "bearer  sekrit ", False, True),
        ("203.0.113.9", "Basic sekrit", False, False),
        ("203.0.113.9", None, True, True),
        ("unknown", None, False, False),
    ],
)
def test_who_may_read_metrics(
    client: str, authorization: str | None, public: bool, allowed: bool
) -> None:
    assert metrics_allowed(client, authorization, "sekrit", public=public) is allowed


def test_metrics_is_refused_to_a_forwarded_stranger_behind_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    """With ``trust_forwarded_for`` the client is the forwarded hop, so a stranger coming
    through the (loopback) proxy gets 403, and the same request with the token gets in."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[gateway]\ntrust_forwarded_for = true\n")
    daemon = DaemonProcess(home, ARTDAG_P2P="false")
    try:
        daemon.start()
        stranger = {"X-Forwarded-For": "203.0.113.9"}
        with httpx.Client(base_url=daemon.api_url, timeout=30) as anonymous:
            refused = anonymous.get("/metrics", headers=stranger)
            assert refused.status_code == 403 and "token" in refused.text
            assert anonymous.get("/metrics").status_code == 200  # the proxy host itself
        with daemon.http() as client:
            assert client.get("/metrics", headers=stranger).status_code == 200
    finally:
        daemon.stop()


async def test_gossip_tells_its_message_observers_in_out_and_rejected() -> None:
    """The hook the metrics count gossip through, on real py-libp2p hosts over loopback."""
    from dag import encode_dagcbor
    from p2p.gossip import HEADS
    from tests.harness.gossip_nodes import gossip_nodes, head_message, link

    async with gossip_nodes(2) as (a, b):
        heard: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": []}
        a.gossip.message_observers.append(lambda *event: heard["a"].append(event))
        b.gossip.message_observers.append(lambda *event: heard["b"].append(event))
        received = b.gossip.subscribe(HEADS.name)
        await link(a, b)
        await a.gossip.publish(HEADS.name, head_message(a.identity, 0))
        forged = {**head_message(a.identity, 1), "seq": 7}  # changed after signing
        await a.gossip.pubsub.publish(HEADS.name, encode_dagcbor(forged))
        await a.gossip.publish(HEADS.name, head_message(a.identity, 2))
        with trio.fail_after(10):
            await received.receive()
            await received.receive()  # the second valid one: the forged one came before it
    t = HEADS.name
    assert heard["a"] == [("out", t, ""), ("out", t, "")]
    assert heard["b"] == [("in", t, ""), ("rejected", t, "bad-signature"), ("in", t, "")]
