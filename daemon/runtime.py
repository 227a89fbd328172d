"""The daemon's lifetime: one trio nursery holding the libp2p network (host, discovery, bitswap,
gossip, repo sync) and the HTTP server (and, as later layers land, the renderer's workers and the
delivery queue). Each service reports that it is ready through ``nursery.start``, so "started"
means listening; only then is ``$ARTDAG_HOME/daemon.json`` written for the CLI to find.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from daemon.config import Config
from daemon.core.fediverse import ActivityPubService
from daemon.core.network import run_network, start_market
from daemon.home import read_token
from daemon.http.app import create_app
from daemon.nodeapi.client import remove_daemon_file, write_daemon_file
from daemon.services import Services, open_services
from webui import WebServices

__all__ = ["Ready", "run_daemon", "serve_http"]


@dataclass(frozen=True)
class Ready:
    urls: list[str]
    did: str
    peer_id: str | None
    p2p_addrs: list[str]


async def serve_http(
    services: Services,
    token: str,
    host: str,
    port: int,
    *,
    activitypub: ActivityPubService | None = None,
    web: WebServices | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app over ``services``; report the bound URLs (``http://127.0.0.1:PORT``)
    once listening."""
    config = services.config
    hconfig = HypercornConfig()
    hconfig.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hconfig.accesslog = None
    hconfig.errorlog = "-"
    hconfig.graceful_timeout = 5
    if config.http.tls_cert:
        hconfig.certfile = str(Path(config.http.tls_cert).expanduser())
        hconfig.keyfile = str(Path(config.http.tls_key).expanduser())
    pins = await services.pins()
    market_store = await services.market_store() if services.network is not None else None
    app = create_app(
        services, token, pins=pins, activitypub=activitypub, web=web, market_store=market_store
    )
    await serve(app, hconfig, task_status=task_status)


async def run_daemon(
    config: Config, on_ready: Callable[[Ready], None], *, fault: str | None = None
) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready`` is called once everything listens.
    ``fault`` is for tests only (a volunteer that returns wrong results)."""
    async with open_services(config, with_network=True) as services:
        try:
            async with trio.open_nursery() as nursery:
                network = services.network
                info = await run_network(nursery, network) if network is not None else None
                urls = await _start_services(nursery, services, fault=fault)
                ready = Ready(
                    urls=urls,
                    did=services.node.did,
                    peer_id=info.peer_id if info else None,
                    p2p_addrs=info.addrs if info else [],
                )
                _announce_ready(config, ready)
                on_ready(ready)
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        break
                nursery.cancel_scope.cancel()
        finally:
            remove_daemon_file(config)


async def _start_services(
    nursery: trio.Nursery, services: Services, *, fault: str | None
) -> list[str]:
    """Start every loop of the node in ``nursery`` (the network already runs), the HTTP
    server last; its URLs."""
    from daemon.core.ownership.tasks import run_claims_gossip, run_ownership_tasks
    from daemon.http.web import web_services

    config, node, network = services.config, services.node, services.network
    claims, anchors = await services.claims(), await services.anchors()
    if network is not None:
        await nursery.start(run_claims_gossip, network, node.store, claims)
    await nursery.start(run_ownership_tasks, node.store, claims, anchors)
    if network is not None:
        await start_market(nursery, await services.market(fault=fault))
    if config.pinning.service_api:
        await nursery.start((await services.pinning()).run)
    pins = await services.pins()
    await nursery.start(pins.run)
    activitypub = None
    if config.activitypub.enabled:
        activitypub = await services.activitypub()
        await nursery.start(activitypub.run)
    web = await web_services(services, nursery)
    http = config.http
    token = read_token(config)
    urls: list[str] = await nursery.start(
        functools.partial(
            serve_http, services, token, http.host, http.port, activitypub=activitypub, web=web
        )
    )
    return urls


def _announce_ready(config: Config, ready: Ready) -> None:
    """Write ``daemon.json``, by which the CLI finds this daemon."""
    write_daemon_file(
        config,
        {
            "api": ready.urls[0],
            "did": ready.did,
            "peer_id": ready.peer_id,
            "p2p_addrs": ready.p2p_addrs,
            "tls_cert": config.http.tls_cert or None,
        },
    )
