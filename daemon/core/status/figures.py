"""What a node holds right now, in numbers: blocks and bytes in the store, pins by reason,
peers, jobs by role and status, fediverse deliveries by state.

One gatherer serves the Prometheus gauges (:mod:`daemon.core.status.metrics`, computed on each
scrape),
``GET /api/v1/status/full`` and ``artdag status`` without a daemon, so the three never
disagree. The store's size (``Blockstore.usage``: a walk over every block) is the one costly
figure, so it is cached for ``usage_ttl`` seconds; everything else is a small database query
or a count in memory, run in worker threads where it blocks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from daemon.core.market.store import MarketStore
    from daemon.core.node import Node
    from p2p.network import Network

__all__ = ["FigureSource", "NodeFigures"]

USAGE_TTL_S = 30.0


@dataclass(slots=True)
class NodeFigures:
    """One reading. None: not known here (no network, no market, no fediverse bridge)."""

    blocks: int | None
    bytes: int | None
    pins_by_reason: dict[str, int]
    pinned: int
    peers: int | None
    jobs: dict[str, dict[str, int]] | None  # role -> status -> count
    deliveries: dict[str, int] | None  # state -> count
    assets: int = 0
    read_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "store": {"blocks": self.blocks, "bytes": self.bytes},
            "pins": {"total": self.pinned, "by_reason": dict(self.pins_by_reason)},
            "peers": self.peers,
            "jobs": self.jobs,
            "deliveries": self.deliveries,
            "assets": self.assets,
        }


class FigureSource:
    """Reads :class:`NodeFigures` of ``node``: peers from ``network`` and jobs from
    ``market_store`` when given; ``delivery_counts`` (blocking, run in a thread) gives
    deliveries by state when the fediverse bridge is there."""

    def __init__(
        self,
        node: Node,
        *,
        network: Network | None = None,
        market_store: MarketStore | None = None,
        delivery_counts: Callable[[], dict[str, int]] | None = None,
        usage_ttl: float = USAGE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.network = network
        self.market_store = market_store
        self.delivery_counts = delivery_counts
        self.usage_ttl = usage_ttl
        self.clock = clock
        self._usage: tuple[float, int | None, int | None] | None = None
        self._usage_lock = trio.Lock()

    async def gather(self) -> NodeFigures:
        node = self.node
        blocks, size = await self.usage()
        pins = await node.store.pins()
        by_reason: Counter[str] = Counter()
        for pin in pins:
            by_reason.update(pin.reasons)
        peers = len(self.network.peers()) if self.network is not None else None
        jobs: dict[str, dict[str, int]] | None = None
        if (market := self.market_store) is not None:
            rows = await trio.to_thread.run_sync(lambda: market.jobs(limit=1_000_000))
            jobs = {}
            for row in rows:
                by_status = jobs.setdefault(row.role, {})
                by_status[row.status] = by_status.get(row.status, 0) + 1
        deliveries = None
        if self.delivery_counts is not None:
            deliveries = await trio.to_thread.run_sync(self.delivery_counts)
        assets = await trio.to_thread.run_sync(node.index.count_assets)
        return NodeFigures(
            blocks=blocks,
            bytes=size,
            pins_by_reason=dict(sorted(by_reason.items())),
            pinned=len(pins),
            peers=peers,
            jobs=jobs,
            deliveries=deliveries,
            assets=assets,
        )

    async def usage(self) -> tuple[int | None, int | None]:
        """(blocks, bytes) in the store, at most ``usage_ttl`` seconds old."""
        async with self._usage_lock:  # one walk at a time; the others wait for its result
            now = self.clock()
            if self._usage is None or now - self._usage[0] >= self.usage_ttl:
                measured = await self.node.store.usage()
                self._usage = (self.clock(), measured.blocks, measured.bytes)
            return self._usage[1], self._usage[2]


def status_json(
    node: Node,
    figures: NodeFigures,
    *,
    daemon: dict[str, Any] | None = None,
    gateway: dict[str, int] | None = None,
    last_gc: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``artdag status`` as JSON (``GET /api/v1/status/full``): the node, its figures, and,
    when a daemon runs, ``daemon`` (uptime, peer id, ...) and the gateway's traffic since it
    started; ``last_gc`` is the collector's last report."""
    from importlib.metadata import version

    config = node.config
    quota = config.pinning.quota_bytes or None
    return {
        "did": node.did,
        "version": version("artdag"),
        "home": str(config.home),
        "store_kind": config.store.backend,
        "daemon": daemon or {"running": False},
        **figures.to_json(),
        "quota_bytes": quota,
        "quota_used_percent": (
            round(100 * figures.bytes / quota, 1) if quota and figures.bytes is not None else None
        ),
        "followed_creators": len(config.pinning.follow_creators),
        "gateway": gateway,
        "last_gc": last_gc,
    }
