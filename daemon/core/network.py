"""Wiring the P2P network into the node: build it from the config, index what it brings in,
and announce what the node adds."""

from __future__ import annotations

import logging
from typing import Any

import trio

from daemon.config import Config
from daemon.core.node import Node
from dag import CID
from p2p import load_or_create_key
from p2p.network import Network, NetworkInfo

__all__ = ["start_market", "start_network"]

log = logging.getLogger("artdag.daemon")


async def start_network(nursery: trio.Nursery, config: Config, node: Node) -> NetworkInfo:
    """Start the network in ``nursery``; the node then announces every record it adds."""
    key_pair = await trio.to_thread.run_sync(load_or_create_key, config.node_key_path)

    async def on_record(cid: CID, record: dict[str, Any]) -> None:
        await node.index_remote_record(cid, record)

    network = Network(
        key_pair=key_pair,
        store=node.store,
        identity=node.identity,
        db_path=config.p2p_db_path,
        listen=config.p2p.listen,
        bootstrap=config.p2p.bootstrap,
        mdns=config.p2p.mdns,
        dht=config.p2p.dht,
        max_inflight=config.p2p.max_fetch_inflight,
        on_record=on_record,
    )
    info: NetworkInfo = await nursery.start(network.run)
    node.attach_network(network)
    log.info("p2p host %s listening on %s", info.peer_id, " ".join(info.addrs))
    nursery.start_soon(_provide_pins, node, network)
    return info


async def _provide_pins(node: Node, network: Network) -> None:
    """Announce every pinned root on the DHT once at start (new ones are announced as added)."""
    network.provide_soon(*[pin.cid for pin in await node.store.pins()])
    log.debug("queued the pinned roots for the DHT")


async def start_market(
    nursery: trio.Nursery, config: Config, node: Node, *, fault: str | None = None
) -> None:
    """Start the render market on the running network (as a volunteer too if configured)."""
    from daemon.core.market.service import MarketService, MarketSettings
    from daemon.core.market.store import MarketStore
    from daemon.core.render.service import RenderService

    assert node.network is not None
    if node.market_store is None:
        node.market_store = await trio.to_thread.run_sync(MarketStore, config.index_path)
    policy = config.volunteer.policy() if config.volunteer.enabled else None
    if fault is not None:
        log.warning("TEST FAULT %r is on: this volunteer delivers wrong results", fault)
    market = MarketService(
        network=node.network,
        renders=RenderService.for_node(node),
        store=node.market_store,
        settings=MarketSettings.from_config(config),
        workroot=config.home,
        policy=policy,
        fault=fault,
    )
    await nursery.start(market.run)
    node.market = market
    if policy is not None:
        log.info("volunteering: %s", policy.to_mapping())
