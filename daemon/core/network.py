"""Wiring the P2P network into the node: build it from the config, index what it brings in,
and announce what the node adds."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from daemon.config import Config
from daemon.core.node import Node
from dag import CID
from p2p import load_or_create_key
from p2p.network import Network, NetworkInfo

if TYPE_CHECKING:
    from daemon.core.market.service import MarketService

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


async def start_market(nursery: trio.Nursery, market: MarketService) -> None:
    """Run the render market (built by ``Services.market``) on the running network, as a
    volunteer too if ``[volunteer]`` says so."""
    volunteer = market.volunteer
    if volunteer is not None and volunteer.fault is not None:
        log.warning("TEST FAULT %r is on: this volunteer delivers wrong results", volunteer.fault)
    await nursery.start(market.run)
    if volunteer is not None:
        log.info("volunteering: %s", volunteer.policy.to_mapping())
