"""The node on one screen (``artdag status``): its figures as the status JSON.

The daemon answers ``GET /api/v1/status/full`` (the gateway's traffic, uptime and peers live
only there); in-process the same figures (:mod:`daemon.core.status.figures`) are gathered from
the node's files, with ``daemon: {"running": false}``.
"""

from __future__ import annotations

from typing import Any, Protocol

from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services

__all__ = ["LocalStatus", "RemoteStatus", "StatusApi"]


class StatusApi(Protocol):
    async def full(self) -> dict[str, Any]:
        """The status JSON: node, store, pins, peers, gateway, jobs, deliveries, last gc."""
        ...


class LocalStatus:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def full(self) -> dict[str, Any]:
        from activitypub_bridge.delivery_queue import DeliveryQueue
        from daemon.core.status.figures import FigureSource, status_json

        services = self._services
        config, node = services.config, services.node
        delivery_counts = None
        if config.deliveries_path.exists():

            def delivery_counts() -> dict[str, int]:
                queue = DeliveryQueue.open(config.deliveries_path, recover=False)
                try:
                    return {str(state): n for state, n in queue.stats().counts.items()}
                finally:
                    queue.close()

        figures = await FigureSource(
            node,
            network=services.network,
            market_store=await services.market_store(),
            delivery_counts=delivery_counts,
        ).gather()
        return status_json(node, figures, daemon={"running": False})


class RemoteStatus:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def full(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._caller.call("GET", "/api/v1/status/full")
        info["daemon"]["urls"] = [str(self._caller.client.base_url).rstrip("/")]
        return info
