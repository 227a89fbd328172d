"""Operators' routes: ``GET /metrics`` (Prometheus text exposition) and
``GET /api/v1/status/full`` (what ``artdag status`` prints), and the hook timing API requests.

Who may read ``/metrics`` is :func:`metrics_allowed`'s pure decision: a loopback client, a
request with the API bearer token, or anyone when ``[metrics] public = true``; else 403. Behind
a reverse proxy on this host (``[gateway] trust_forwarded_for``) the client is the first
``X-Forwarded-For`` hop, so a stranger coming through the proxy is not mistaken for loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Response, g, jsonify, request
from quart_trio import QuartTrio

from daemon.core.status.figures import status_json
from daemon.core.status.metrics import NodeMetrics
from webui import client_address

if TYPE_CHECKING:
    from daemon.core.node import Node
    from p2p.network import Network

__all__ = ["add_metrics_routes", "metrics_allowed"]


def metrics_allowed(client: str, authorization: str | None, token: str, *, public: bool) -> bool:
    """May ``client`` (an address, as :func:`webui.client_address` gives it) read /metrics?"""
    if public:
        return True
    try:
        if ipaddress.ip_address(client).is_loopback:
            return True
    except ValueError:
        pass  # "unknown" or a unix socket: not loopback by address
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def add_metrics_routes(
    app: QuartTrio,
    node: Node,
    metrics: NodeMetrics,
    network: Network | None,
    *,
    token: str,
    last_gc: Callable[[], dict[str, Any] | None] | None = None,
) -> None:
    """Mount ``/metrics`` and ``/api/v1/status/full``, time ``/api/`` requests and count the
    node's gossip while the app serves.
    ``last_gc`` reads the garbage collector's last report (None: no collector here)."""
    config = node.config
    gossip = network.gossip if network is not None else None
    if gossip is not None:
        gossip.message_observers.append(metrics.observe_gossip)

        @app.after_serving
        async def stop_counting_gossip() -> None:
            if metrics.observe_gossip in gossip.message_observers:
                gossip.message_observers.remove(metrics.observe_gossip)

    @app.before_request
    async def start_clock() -> None:
        g.artdag_started = time.monotonic()

    @app.after_request
    async def stop_clock(response: Response) -> Response:
        started = getattr(g, "artdag_started", None)
        if started is not None and request.path.startswith("/api/"):
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.observe_api(request.method, rule, time.monotonic() - started)
        return response

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        client = client_address(
            request.remote_addr,
            request.headers.get("X-Forwarded-For"),
            trust_forwarded_for=config.gateway.trust_forwarded_for,
        )
        if not metrics_allowed(
            client, request.headers.get("Authorization"), token, public=config.metrics.public
        ):
            return Response(
                "metrics are served to this machine or with the API bearer token "
                "([metrics] public = true serves everyone)\n",
                status=403,
                content_type="text/plain; charset=utf-8",
            )
        body = await metrics.exposition()
        return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status/full")
    async def status_full() -> Any:
        figures = await metrics.figures.gather()
        p2p = network.info() if network is not None else None
        daemon = {
            "running": True,
            "pid": os.getpid(),
            "started": metrics.started,
            "uptime_s": round(time.time() - metrics.started, 1),
            "peer_id": p2p.peer_id if p2p is not None else None,
            "p2p_addrs": p2p.addrs if p2p is not None else [],
        }
        return jsonify(
            status_json(
                node,
                figures,
                daemon=daemon,
                gateway=metrics.gateway_totals().to_json(),
                last_gc=last_gc() if last_gc is not None else None,
            )
        )
