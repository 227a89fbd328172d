"""The local HTTP app: ``/healthz`` and the JSON API under ``/api/v1`` (Quart-trio).

Every ``/api/v1`` route needs ``Authorization: Bearer <token>``, the token kept in
``$ARTDAG_HOME/api-token`` (mode 0600). Routes only translate HTTP to :class:`Node` calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, jsonify, request
from quart_trio import QuartTrio

import dag
from daemon.core.fediverse import ActivityPubService
from daemon.core.gateway_fetch import make_fetch_missing
from daemon.core.market.store import MarketStore
from daemon.core.node import Node
from daemon.core.pins.service import PinService
from daemon.core.status.metrics import metrics_for
from daemon.http import context
from daemon.http import market as market_routes
from daemon.http import render as render_routes
from daemon.http.activitypub import fediverse, fediverse_api
from daemon.http.assets import assets
from daemon.http.content import content
from daemon.http.metrics import add_metrics_routes
from daemon.http.money import money
from daemon.http.ownership import ownership
from daemon.http.p2p import p2p_routes
from daemon.http.pinning import pinning
from daemon.http.pinning_admin import pinning_admin
from daemon.http.pins import pins as pins_routes
from daemon.http.render import RenderRequestError
from daemon.services import Services
from p2p.errors import P2PError
from provenance import ProvenanceError
from webui import (
    AssetSummary,
    ClientLimits,
    LiveSessions,
    PasswordFile,
    WebServices,
    add_gateway_routes,
    add_pages,
    add_provenance_routes,
    load_or_create_secret,
)

__all__ = ["create_app"]

_OCTET_STREAM = "application/octet-stream"


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


# Most specific first: Quart picks the handler registered for the nearest class in the MRO.
_STATUS_FOR_ERROR: dict[type[Exception], int] = {
    dag.CidError: 400,
    dag.BlockNotFound: 404,
    dag.CodecError: 422,
    dag.CarError: 422,  # a CAR file sent to POST /api/v1/car
    dag.BlockCorrupt: 422,
    ProvenanceError: 422,
    dag.StoreError: 503,
    P2PError: 502,
    RenderRequestError: 400,
}


def _add_provenance_page(app: QuartTrio, node: Node) -> None:
    """The public provenance page fediverse posts link to (``webui.provenance_page``)."""

    async def graph_for(cid: str) -> Any:
        renders = await context.services().renders()
        return await renders.provenance_graph(cid, max_nodes=500)

    async def asset_for(cid: str) -> AssetSummary | None:
        row = await node.asset(cid)
        if row is None:
            return None
        return AssetSummary(row.name, row.mime, row.signer, row.created)

    add_provenance_routes(app, graph_for, asset_for)


def _guard(app: QuartTrio, token: str, max_upload_bytes: int) -> None:
    """The bearer token on every ``/api/`` route; known errors as ``{"error"}`` with their
    status; a 413 that closes the connection."""

    @app.before_request
    async def require_token() -> Response | None:
        if not request.path.startswith("/api/"):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            response = _error(401, "missing or wrong bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="artdag"'
            return response
        return None

    def reply_with(status: int) -> Callable[[Exception], Awaitable[Response]]:
        async def handler(exc: Exception) -> Response:
            return _error(status, str(exc))

        return handler

    for error_type, status in _STATUS_FOR_ERROR.items():
        app.register_error_handler(error_type, reply_with(status))

    @app.errorhandler(413)
    async def too_large(exc: Exception) -> Response:
        response = _error(413, f"upload larger than {max_upload_bytes} bytes")
        response.headers["Connection"] = "close"  # the rest of the body is never read
        return response


def create_app(
    services: Services,
    token: str,
    *,
    pins: PinService | None = None,
    activitypub: ActivityPubService | None = None,
    web: WebServices | None = None,
    market_store: MarketStore | None = None,
) -> QuartTrio:
    """The app over ``services``: ``pins`` feeds the gateway's popularity and the last gc
    report, ``activitypub`` (the bridge, when it runs) its routes and delivery figures,
    ``web`` the pages, ``market_store`` the job figures (when the market runs)."""
    node, network = services.node, services.network
    app = QuartTrio("artdag", static_folder=None)  # webui serves /static from its blueprint
    app.config["MAX_CONTENT_LENGTH"] = node.config.http.max_upload_bytes
    app.config["BODY_TIMEOUT"] = 3600

    _guard(app, token, node.config.http.max_upload_bytes)

    @app.get("/healthz")
    async def healthz() -> Any:
        return jsonify(await node.status())

    context.install(app, services)
    app.register_blueprint(assets)
    app.register_blueprint(content)
    app.register_blueprint(p2p_routes)
    app.register_blueprint(market_routes.bp)
    app.register_blueprint(render_routes.bp)
    fetch_missing = make_fetch_missing(node.store, network, node.config.gateway)
    metrics = metrics_for(
        node,
        network=network,
        market_store=market_store,
        activitypub=activitypub,
        fetch_missing=fetch_missing,
    )
    app.register_blueprint(pins_routes)
    app.register_blueprint(pinning_admin)
    add_metrics_routes(
        app, node, metrics, network, token=token, last_gc=lambda: pins.last_gc if pins else None
    )
    add_gateway_routes(
        app,
        node,
        fetch_missing=fetch_missing,
        observers=[metrics.observe_gateway, *([pins.observe_gateway] if pins else [])],
        limiter=ClientLimits.per_minute(
            node.config.gateway.requests_per_minute, node.config.gateway.burst
        ),
        trust_forwarded_for=node.config.gateway.trust_forwarded_for,
    )
    _add_provenance_page(app, node)
    if node.config.pinning.service_api:
        app.register_blueprint(pinning)  # the IPFS Pinning Service API at /pins
    app.register_blueprint(ownership)
    app.register_blueprint(money)
    app.register_blueprint(fediverse_api)
    if activitypub is not None:
        app.register_blueprint(fediverse)
    if web is not None:
        config = node.config
        add_pages(
            app,
            web,
            password=PasswordFile(config.web_password_path),
            secret=load_or_create_secret(config.web_secret_path),
            sessions=LiveSessions(config.web_sessions_path),
            secure_cookies=bool(config.http.tls_cert),
            trust_forwarded_for=config.gateway.trust_forwarded_for,
        )
    return app
