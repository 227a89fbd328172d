"""The daemon's Prometheus metrics: one :class:`NodeMetrics` per HTTP app, with its own
``CollectorRegistry`` (never prometheus_client's global one: a test process starts many apps).

Counters and histograms move as things happen, fed by hooks:

- the gateway's observers (:class:`webui.GatewayEvent`): ``artdag_gateway_requests_total``
  by method and status class, ``artdag_gateway_sent_bytes_total``,
  ``artdag_gateway_rate_limited_total`` and the ``artdag_gateway_response_seconds`` histogram
  (request to last byte);
- gossip's message observers (``p2p.gossip.Gossip.message_observers``):
  ``artdag_gossip_messages_total`` by direction (``in`` accepted, ``out`` published) and
  topic, ``artdag_gossip_rejected_total`` by topic and reason;
- a before/after request hook on the app: ``artdag_api_request_seconds`` by method and route
  (the route's rule, not the path, so the label set stays small) for ``/api/`` requests.

Gauges are read on each scrape by a custom collector from
:class:`daemon.core.status.figures.FigureSource`
(store blocks and bytes, pins by reason, peers, jobs, deliveries), plus the gateway fetch
hook's counts and ``artdag_info{version,did}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from daemon.core.status.figures import FigureSource, NodeFigures
from webui import GatewayEvent

if TYPE_CHECKING:
    from daemon.core.fediverse import ActivityPubService
    from daemon.core.gateway_fetch import GatewayFetchStats
    from daemon.core.market.store import MarketStore
    from daemon.core.node import Node
    from p2p.network import Network

__all__ = ["GatewayTotals", "NodeMetrics", "metrics_for"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass(frozen=True, slots=True)
class GatewayTotals:
    """Gateway traffic since the app started (for ``artdag status``)."""

    requests: int
    bytes_sent: int
    rate_limited: int

    def to_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "rate_limited": self.rate_limited,
        }


class _FiguresCollector(Collector):
    """Gauges from the latest :class:`NodeFigures` (set by :meth:`NodeMetrics.exposition`
    just before the registry is rendered)."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        info = InfoMetricFamily("artdag", "This node: software version and creator did.")
        info.add_metric([], {"version": m.version, "did": m.node.did})
        yield info
        start = GaugeMetricFamily(
            "artdag_start_time_seconds", "When this daemon's HTTP app started (Unix time)."
        )
        start.add_metric([], m.started)
        yield start
        figures = m.latest
        if figures is None:
            return
        if figures.blocks is not None:
            yield GaugeMetricFamily(
                "artdag_store_blocks", "Blocks in the blockstore.", value=figures.blocks
            )
        if figures.bytes is not None:
            yield GaugeMetricFamily(
                "artdag_store_bytes", "Bytes of blocks in the blockstore.", value=figures.bytes
            )
        pins = GaugeMetricFamily(
            "artdag_pins",
            "Pinned CIDs by reason (a CID counts under each of its reasons).",
            labels=["reason"],
        )
        for reason, count in figures.pins_by_reason.items():
            pins.add_metric([reason], count)
        yield pins
        yield GaugeMetricFamily("artdag_pinned_cids", "Pinned CIDs.", value=figures.pinned)
        yield GaugeMetricFamily("artdag_assets", "Assets in the index.", value=figures.assets)
        if figures.peers is not None:
            yield GaugeMetricFamily("artdag_peers", "Connected libp2p peers.", value=figures.peers)
        if figures.jobs is not None:
            jobs = GaugeMetricFamily(
                "artdag_jobs", "Render jobs by role and status.", labels=["role", "status"]
            )
            for role, by_status in sorted(figures.jobs.items()):
                for status, count in sorted(by_status.items()):
                    jobs.add_metric([role, status], count)
            yield jobs
        if figures.deliveries is not None:
            deliveries = GaugeMetricFamily(
                "artdag_deliveries", "ActivityPub deliveries by state.", labels=["state"]
            )
            for state, count in sorted(figures.deliveries.items()):
                deliveries.add_metric([state], count)
            yield deliveries
        if m.fetch_stats is not None:
            fetches = CounterMetricFamily(
                "artdag_gateway_fetches",
                "Blocks the gateway asked the network for, by outcome.",
                labels=["outcome"],
            )
            fetches.add_metric(["fetched"], m.fetch_stats.fetched)
            fetches.add_metric(["refused"], m.fetch_stats.refused)
            fetches.add_metric(["failed"], m.fetch_stats.failed)
            yield fetches


class NodeMetrics:
    """The metrics of one app serving ``node``; ``figures`` reads the gauges' values."""

    def __init__(
        self,
        node: Node,
        figures: FigureSource,
        *,
        fetch_stats: GatewayFetchStats | None = None,
    ) -> None:
        self.node = node
        self.figures = figures
        self.fetch_stats = fetch_stats
        self.version = version("artdag")
        self.started = time.time()
        self.latest: NodeFigures | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.gateway_requests = Counter(
            "artdag_gateway_requests",
            "Gateway responses by method and status class.",
            ["method", "code"],
            registry=r,
        )
        self.gateway_bytes = Counter(
            "artdag_gateway_sent_bytes", "Body bytes the gateway sent.", registry=r
        )
        self.gateway_limited = Counter(
            "artdag_gateway_rate_limited",
            "Gateway requests refused with 429 (a client over its rate).",
            registry=r,
        )
        self.gateway_seconds = Histogram(
            "artdag_gateway_response_seconds",
            "Gateway responses: seconds from the request to the last byte sent.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_seconds = Histogram(
            "artdag_api_request_seconds",
            "Local JSON API requests: seconds until the response started, by method and route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gossip_messages = Counter(
            "artdag_gossip_messages",
            "Gossip messages by direction (in: accepted from peers, out: published) and topic.",
            ["direction", "topic"],
            registry=r,
        )
        self.gossip_rejected = Counter(
            "artdag_gossip_rejected",
            "Gossip messages refused by a validator (or from a graylisted peer).",
            ["topic", "reason"],
            registry=r,
        )
        self._totals = [0, 0, 0]  # requests, bytes, rate limited: for artdag status
        r.register(_FiguresCollector(self))

    # -- hooks (called on the request path: no blocking) -------------------------------------
    def observe_gateway(self, event: GatewayEvent) -> None:
        self.gateway_requests.labels(event.method, f"{event.status // 100}xx").inc()
        self.gateway_bytes.inc(event.bytes_sent)
        self.gateway_seconds.observe(event.seconds)
        self._totals[0] += 1
        self._totals[1] += event.bytes_sent
        if event.status == 429:
            self.gateway_limited.inc()
            self._totals[2] += 1

    def observe_gossip(self, event: str, topic: str, reason: str) -> None:
        if event == "rejected":
            self.gossip_rejected.labels(topic, reason or "unknown").inc()
        else:
            self.gossip_messages.labels(event, topic).inc()

    def observe_api(self, method: str, route: str, seconds: float) -> None:
        self.api_seconds.labels(method, route).observe(seconds)

    # -- reading -----------------------------------------------------------------------------
    def gateway_totals(self) -> GatewayTotals:
        return GatewayTotals(*self._totals)

    async def exposition(self) -> bytes:
        """The text exposition of every metric, gauges read now."""
        self.latest = await self.figures.gather()
        return generate_latest(self.registry)


def metrics_for(
    node: Node,
    *,
    network: Network | None = None,
    market_store: MarketStore | None = None,
    activitypub: ActivityPubService | None = None,
    fetch_missing: Any = None,
) -> NodeMetrics:
    """The metrics of an app serving ``node``: peers of the running ``network``, jobs of the
    ``market_store``, deliveries from ``activitypub``'s queue when the bridge runs, the
    gateway fetch hook's counts when ``fetch_missing`` has them."""
    delivery_counts = None
    if activitypub is not None:
        queue = activitypub.queue

        def delivery_counts() -> dict[str, int]:
            return {str(state): n for state, n in queue.stats().counts.items()}

    figures = FigureSource(
        node, network=network, market_store=market_store, delivery_counts=delivery_counts
    )
    return NodeMetrics(node, figures, fetch_stats=getattr(fetch_missing, "stats", None))
