"""The daemon's lifetime: one trio nursery holding the libp2p network (host, discovery, bitswap,
gossip, repo sync) and the HTTP server (and, as later layers land, the renderer's workers and the
delivery queue). Each service reports that it is ready through ``nursery.start``, so "started"
means listening; only then is ``$ARTDAG_HOME/daemon.json`` written for the CLI to find.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from daemon.config import Config
from daemon.core.fediverse import ActivityPubService
from daemon.core.network import start_market, start_network
from daemon.core.node import Node, open_node
from daemon.core.pins.service import PinService
from daemon.home import read_token
from daemon.http.app import create_app
from daemon.nodeapi.client import remove_daemon_file, write_daemon_file
from daemon.services import Services
from webui import WebServices

__all__ = ["Ready", "run_daemon", "serve_http"]


@dataclass(frozen=True)
class Ready:
    urls: list[str]
    did: str
    peer_id: str | None
    p2p_addrs: list[str]


async def serve_http(
    node: Node,
    token: str,
    host: str,
    port: int,
    activitypub: ActivityPubService | None = None,
    web: WebServices | None = None,
    pins: PinService | None = None,
    services: Services | None = None,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app; report the bound URLs (``http://127.0.0.1:PORT``) once listening.
    Without ``services`` (tests serving a node alone) the app opens its own over the node."""
    hconfig = HypercornConfig()
    hconfig.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hconfig.accesslog = None
    hconfig.errorlog = "-"
    hconfig.graceful_timeout = 5
    if node.config.http.tls_cert:
        hconfig.certfile = str(Path(node.config.http.tls_cert).expanduser())
        hconfig.keyfile = str(Path(node.config.http.tls_key).expanduser())
    async with contextlib.AsyncExitStack() as stack:
        if services is None:
            services = Services(node.config, node, stack, node.network)
        if pins is None:
            pins = await services.pins()
        app = create_app(node, token, activitypub, web, pins, services)
        await serve(app, hconfig, task_status=task_status)


async def run_daemon(
    config: Config, on_ready: Callable[[Ready], None], *, fault: str | None = None
) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready`` is called once everything listens.
    ``fault`` is for tests only (a volunteer that returns wrong results)."""
    from daemon.core.fediverse import open_activitypub
    from daemon.core.money import open_money
    from daemon.core.ownership.tasks import open_claims, run_claims_gossip, run_ownership_tasks
    from daemon.core.render.web import web_render
    from daemon.http.web import web_services

    async with open_node(config) as node, contextlib.AsyncExitStack() as stack:
        token = read_token(config)
        try:
            async with trio.open_nursery() as nursery:
                node.claims = claims = await stack.enter_async_context(open_claims(node))
                info = await start_network(nursery, config, node) if config.p2p.enabled else None
                if info is not None:
                    await start_market(nursery, config, node, fault=fault)
                    await nursery.start(run_claims_gossip, node, claims)
                await nursery.start(run_ownership_tasks, node, claims)
                services = Services(config, node, stack, node.network)  # F2; F1: open_services
                if config.pinning.service_api:
                    await nursery.start((await services.pinning()).run)
                pins = await services.pins()
                await nursery.start(pins.run)
                activitypub = None
                if config.activitypub.enabled:
                    money = await stack.enter_async_context(
                        open_money(node, find_claim=claims.winning_claim)
                    )
                    activitypub = await stack.enter_async_context(open_activitypub(node, money))
                    activitypub.on_usage = pins.observe_usage
                    await nursery.start(activitypub.run)
                web = web_services(
                    node,
                    claims=claims,
                    anchors=claims.anchors,
                    activitypub=activitypub,
                    render=web_render(node, nursery),
                    pins=pins,
                )
                http = config.http
                urls = await nursery.start(
                    serve_http, node, token, http.host, http.port, activitypub, web, pins, services
                )
                ready = Ready(
                    urls=urls,
                    did=node.did,
                    peer_id=info.peer_id if info else None,
                    p2p_addrs=info.addrs if info else [],
                )
                write_daemon_file(
                    config,
                    {
                        "api": urls[0],
                        "did": node.did,
                        "peer_id": ready.peer_id,
                        "p2p_addrs": ready.p2p_addrs,
                        "tls_cert": config.http.tls_cert or None,
                    },
                )
                on_ready(ready)
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        break
                nursery.cancel_scope.cancel()
        finally:
            remove_daemon_file(config)
