"""What the render market's two roles share: settings, errors, and one context of services.

:class:`MarketContext` is built by :class:`daemon.core.market.service.MarketService` and handed
to the
requester (:mod:`daemon.core.market.requester`) and the volunteer
(:mod:`daemon.core.market.volunteer`):
the network, the render service, the market's SQLite store, the settings, and how to gossip a
market message or wake the lease clock.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from daemon.core.market.store import MarketStore
from renderer import RenderError

if TYPE_CHECKING:
    from daemon.config import MarketConfig
    from daemon.core.render.service import RenderService
    from p2p.network import Network

__all__ = [
    "FETCH_BLOCK_TIMEOUT_S",
    "MarketContext",
    "MarketError",
    "MarketNotRunning",
    "MarketRole",
    "MarketSettings",
]

FETCH_BLOCK_TIMEOUT_S = 30.0


class MarketError(RenderError):
    """A job could not be completed on the network (no volunteer, deadline, no quorum)."""


class MarketNotRunning(LookupError):
    """This node runs no render market (P2P is off), so it has no market ledger either."""


@dataclass(frozen=True)
class MarketSettings:
    replicas: int = 1
    lease_s: float = 20.0
    heartbeat_s: float = 5.0
    deadline_s: float = 1800.0
    offer_wait_s: float = 60.0
    adaptive: bool = True
    trust_after: int = 10
    spot_check: float = 0.1
    grace_s: float = 1.0

    @classmethod
    def from_config(cls, market: MarketConfig) -> MarketSettings:
        """The settings of the ``[market]`` section."""
        return cls(
            replicas=market.replicas,
            lease_s=market.lease_seconds,
            heartbeat_s=market.heartbeat_seconds,
            deadline_s=market.deadline_seconds,
            offer_wait_s=market.offer_wait_seconds,
            adaptive=market.adaptive,
            trust_after=market.trust_after,
            spot_check=market.spot_check,
        )


@dataclass
class MarketContext:
    network: Network
    renders: RenderService
    store: MarketStore
    settings: MarketSettings
    publish: Callable[..., Awaitable[None]]  # publish(type_name, **payload)
    poke: Callable[[], None]  # wake the lease clock
    nursery: trio.Nursery | None = field(default=None)


class MarketRole:
    """Requester or volunteer: the shared services under short names."""

    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self.network = ctx.network
        self.renders = ctx.renders
        self.store = ctx.store
        self.settings = ctx.settings
        self.did = ctx.renders.identity.did

    async def _publish(self, type_name: str, **payload: Any) -> None:
        await self.ctx.publish(type_name, **payload)

    def _poke(self) -> None:
        self.ctx.poke()

    @property
    def _nursery(self) -> trio.Nursery:
        assert self.ctx.nursery is not None, "the market is not running"
        return self.ctx.nursery

    async def _credit(self, did: str, **counts: int) -> None:
        await trio.to_thread.run_sync(functools.partial(self.store.credit, did, **counts))
