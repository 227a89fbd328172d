"""Every service of one node, each constructed once, with the narrow dependencies it needs.

The daemon (:func:`daemon.runtime.run_daemon`) and the in-process node API
(:mod:`daemon.nodeapi.local`) both open one :class:`Services` for a node home; nothing else
constructs a service. Services are opened on first use (``await services.pins()``), so a CLI
command that reads the asset index never opens the fediverse database, and closed together,
in reverse order, when the :class:`Services` closes. The daemon opens the ones it runs at
start; a service that needs the running network gets it as a parameter here (``network`` is
None in-process, and such a service says it needs the daemon).

To add a service: a method here that opens it from its config section and the services it
depends on (each passed explicitly, never the whole :class:`Services`), cached in ``_opened``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from daemon.config import Config
from daemon.core.node import Node, RecordPublisher, open_node
from dag import CID, Blockstore
from provenance import Identity

if TYPE_CHECKING:
    from daemon.core.fediverse import ActivityPubService
    from daemon.core.market.service import MarketService
    from daemon.core.market.store import MarketStore
    from daemon.core.money import MoneyService
    from daemon.core.ownership.anchors import AnchorService
    from daemon.core.ownership.claims import ClaimsService
    from daemon.core.pinning_api.worker import PinningWorker
    from daemon.core.pins.service import PinService
    from daemon.core.render.service import RenderService
    from p2p.network import Network

__all__ = ["NeedsDaemon", "Services", "open_services"]

T = TypeVar("T")


class NeedsDaemon(RuntimeError):
    """The call needs the running daemon's network (``artdag daemon``), and none is running."""


class Services:
    def __init__(
        self, config: Config, node: Node, stack: contextlib.AsyncExitStack, network: Network | None
    ) -> None:
        self.config = config
        self.node = node
        self.network = network
        self._stack = stack
        self._opened: dict[str, Any] = {}
        self._lock = trio.Lock()

    async def _once(self, name: str, opener: Callable[[], Awaitable[T]]) -> T:
        """The service ``name``, opened by ``opener`` the first time only."""
        async with self._lock:
            if name not in self._opened:
                self._opened[name] = await opener()
            return self._opened[name]

    # -- render and the render market (F4) ---------------------------------------------------
    async def renders(self) -> RenderService:
        """The rendering service: store, identity, index and its step cache (index database),
        scratch space under the home; finished renders published through the node."""
        from daemon.core.render.service import RenderService

        node, config = self.node, self.config

        async def opener() -> RenderService:
            service = await trio.to_thread.run_sync(
                functools.partial(
                    RenderService,
                    node.store,
                    node.identity,
                    config.index_path,
                    index=node.index,
                    import_params=node.import_params(),
                    workroot=config.home,
                    publisher=node,
                )
            )
            self._stack.callback(service.close)
            return service

        return await self._once("renders", opener)

    async def market_store(self) -> MarketStore:
        """The render market's ledger (jobs, results, volunteer credits; index database)."""
        from daemon.core.market.store import MarketStore

        async def opener() -> MarketStore:
            store = await trio.to_thread.run_sync(MarketStore, self.config.index_path)
            self._stack.callback(store.close)
            return store

        return await self._once("market_store", opener)

    async def market(self, *, fault: str | None = None) -> MarketService:
        """The render market on the running network, a volunteer too if ``[volunteer]`` says
        so. The daemon's runtime opens it first and runs it; ``fault`` (tests only: a
        volunteer that delivers wrong results) counts on that first call only."""
        from daemon.core.market.context import MarketNotRunning
        from daemon.core.market.service import MarketService, MarketSettings

        if not self.config.p2p.enabled:
            raise MarketNotRunning("the render market is not running on this node (no p2p)")
        network = self.require_network("rendering on the market")
        renders, store = await self.renders(), await self.market_store()
        volunteer = self.config.volunteer
        policy = volunteer.policy() if volunteer.enabled else None

        async def opener() -> MarketService:
            return MarketService(
                network=network,
                renders=renders,
                store=store,
                settings=MarketSettings.from_config(self.config.market),
                workroot=self.config.home,
                policy=policy,
                fault=fault,
            )

        return await self._once("market", opener)

    # -- ownership, money, fediverse (F3) -----------------------------------------------------
    async def anchors(self) -> AnchorService:
        """OpenTimestamps anchoring: ``[anchor]`` calendars and header source, its tables in
        the index database, ``.ots`` proofs under the home."""
        from daemon.core.ownership.tasks import open_anchors

        node, config = self.node, self.config

        async def opener() -> AnchorService:
            return await self._stack.enter_async_context(
                open_anchors(
                    node.store, node.identity, config.index_path, config.home, config.anchor
                )
            )

        return await self._once("anchors", opener)

    async def claims(self) -> ClaimsService:
        """Ownership claims and disputes, ranked by the anchors' verified times, reading what a
        rendered work was made from through the render service."""
        from daemon.core.ownership.tasks import open_claims

        node, config = self.node, self.config
        anchors, renders = await self.anchors(), await self.renders()

        async def opener() -> ClaimsService:
            return await self._stack.enter_async_context(
                open_claims(
                    node.store,
                    node.index,
                    node.identity,
                    anchors,
                    index_path=config.index_path,
                    tmp_root=config.home / "render-tmp",
                    announce=node.announce,
                    network=self.network,
                    find_provenance=renders.provenance_of,
                    limits=renders.limits,
                )
            )

        return await self._once("claims", opener)

    async def money(self) -> MoneyService:
        """Usage records and settlements; a work's claim is the claims service's winner."""
        from daemon.core.money import open_money

        node, config = self.node, self.config
        claims = await self.claims()

        async def opener() -> MoneyService:
            return await self._stack.enter_async_context(
                open_money(
                    node.store,
                    node.index,
                    node.identity,
                    index_path=config.index_path,
                    announce=node.announce,
                    read_record=node.record,
                    find_claim=claims.winning_claim,
                )
            )

        return await self._once("money", opener)

    async def activitypub(self) -> ActivityPubService:
        """The fediverse bridge for the node's creator (``[node] user``, the node identity) at
        the public URL of ``[node] domain``; likes and boosts become usage records and count
        towards the pinning policy's popularity."""
        from daemon.core.fediverse import BridgePaths, open_activitypub

        node, config = self.node, self.config
        money, pins = await self.money(), await self.pins()
        paths = BridgePaths(
            db=config.activitypub_db_path,
            deliveries=config.deliveries_path,
            actor_key=config.actor_key_path,
        )

        async def opener() -> ActivityPubService:
            return await self._stack.enter_async_context(
                open_activitypub(
                    config.bridge_site(),
                    config.activitypub,
                    node.identity,
                    config.node.user,
                    paths,
                    node,
                    money=money,
                    on_usage=pins.observe_usage,
                )
            )

        return await self._once("activitypub", opener)

    # -- pins and the Pinning Service API (F2) -----------------------------------------------
    async def pins(self) -> PinService:
        """Pins with reasons, the pinning policies, the quota and the garbage collector: the
        store and asset index, ``[pinning]``, ``popularity.db``, the creator repos of
        ``p2p.db`` (followed heads, gc roots) and the network to fetch with (None: offline)."""
        from daemon.core.pins.fetching import FetchSource
        from daemon.core.pins.service import PinPaths, PinService

        node, config = self.node, self.config
        paths = PinPaths(popularity_db=config.popularity_db_path, repos_db=config.p2p_db_path)

        async def opener() -> PinService:
            service = await trio.to_thread.run_sync(
                PinService,
                node.index,
                config.pinning,
                paths,
                FetchSource(node.store, self.network),
            )
            self._stack.callback(service.close)
            return service

        return await self._once("pins", opener)

    async def pinning(self) -> PinningWorker:
        """The Pinning Service API's requests and their worker (``pinning.db``, ``[pinning]``);
        the daemon runs the worker, the in-process API only reads and queues."""
        from daemon.core.pinning_api.delegates import Delegates
        from daemon.core.pinning_api.worker import PinningWorker
        from daemon.core.pins.fetching import FetchSource

        node, config = self.node, self.config
        delegates = Delegates(self.network, config.node_key_path, config.p2p.listen)

        async def opener() -> PinningWorker:
            worker = await trio.to_thread.run_sync(
                PinningWorker,
                config.pinning_db_path,
                config.pinning,
                FetchSource(node.store, self.network),
                delegates,
            )
            self._stack.callback(worker.close)
            return worker

        return await self._once("pinning", opener)

    async def on_remote_record(self, cid: CID, record: dict[str, Any]) -> None:
        """A verified record from another creator's repo: indexed by the node, and a claim
        by the claims service too (the daemon has opened it)."""
        if await self.node.index_remote_record(cid, record) and record.get("type") == "claim":
            await (await self.claims()).index_remote_claim(cid, record)

    def require_network(self, what: str) -> Network:
        if self.network is None:
            raise NeedsDaemon(f"{what} needs the running daemon (start it: artdag daemon)")
        return self.network


@asynccontextmanager
async def open_services(config: Config, *, with_network: bool = False) -> AsyncIterator[Services]:
    """Open the node (store, index, identity) now and every other service on first use.

    ``with_network`` (the daemon, when ``[p2p]`` is on) builds the network over the node's
    store and identity before the node: the node announces its records through it, and the
    records it brings in go to :meth:`Services.on_remote_record`. The caller runs it
    (:func:`daemon.core.network.run_network`) before using any other service."""
    from daemon.core.network import NetworkPublisher, build_network

    network: Network | None = None
    services: Services | None = None

    async def on_record(cid: CID, record: dict[str, Any]) -> None:
        assert services is not None  # the network runs only once the services exist
        await services.on_remote_record(cid, record)

    async def network_publisher(store: Blockstore, identity: Identity) -> RecordPublisher:
        nonlocal network
        network = await build_network(config, store, identity, on_record)
        return NetworkPublisher(network)

    make_publisher = network_publisher if with_network and config.p2p.enabled else None
    async with open_node(config, make_publisher) as node, contextlib.AsyncExitStack() as stack:
        services = Services(config, node, stack, network)
        yield services
