"""Wiring the P2P network into the node: build it from the config over the node's store and
identity, run it, announce what the node adds through it, and run the render market on it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from daemon.config import Config
from dag import CID, Blockstore
from p2p import load_or_create_key
from p2p.network import Network, NetworkInfo
from provenance import Identity

if TYPE_CHECKING:
    from daemon.core.market.service import MarketService

__all__ = ["NetworkPublisher", "build_network", "run_network", "start_market"]

log = logging.getLogger("artdag.daemon")

OnRecord = Callable[[CID, dict[str, Any]], Awaitable[None]]


async def build_network(
    config: Config, store: Blockstore, identity: Identity, on_record: OnRecord
) -> Network:
    """The network of ``[p2p]`` (not yet running: :func:`run_network` starts it); verified
    records it brings in from other creators' repos go to ``on_record``."""
    key_pair = await trio.to_thread.run_sync(load_or_create_key, config.node_key_path)
    return Network(
        key_pair=key_pair,
        store=store,
        identity=identity,
        db_path=config.p2p_db_path,
        listen=config.p2p.listen,
        bootstrap=config.p2p.bootstrap,
        mdns=config.p2p.mdns,
        dht=config.p2p.dht,
        max_inflight=config.p2p.max_fetch_inflight,
        on_record=on_record,
    )


class NetworkPublisher:
    """The node's :class:`~daemon.core.node.RecordPublisher` while the daemon's network runs:
    a new record is appended to the creator repo, its head gossiped, it and its roots provided
    on the DHT."""

    def __init__(self, network: Network) -> None:
        self._network = network

    async def publish_record(self, record_cid: CID, *roots: CID) -> None:
        await self._network.publish_record(record_cid)
        self._network.provide_soon(record_cid, *roots)


async def run_network(nursery: trio.Nursery, network: Network) -> NetworkInfo:
    """Start ``network`` in ``nursery``; once it listens, provide every pinned root."""
    info: NetworkInfo = await nursery.start(network.run)
    log.info("p2p host %s listening on %s", info.peer_id, " ".join(info.addrs))
    nursery.start_soon(_provide_pins, network)
    return info


async def _provide_pins(network: Network) -> None:
    """Announce every pinned root on the DHT once at start (new ones are announced as added)."""
    network.provide_soon(*[pin.cid for pin in await network.store.pins()])
    log.debug("queued the pinned roots for the DHT")


async def start_market(nursery: trio.Nursery, market: MarketService) -> None:
    """Run the render market (built by ``Services.market``) on the running network, as a
    volunteer too if ``[volunteer]`` says so."""
    volunteer = market.volunteer
    if volunteer is not None and volunteer.fault is not None:
        log.warning("TEST FAULT %r is on: this volunteer delivers wrong results", volunteer.fault)
    await nursery.start(market.run)
    if volunteer is not None:
        log.info("volunteering: %s", volunteer.policy.to_mapping())
