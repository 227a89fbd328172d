"""The daemon's lifetime: one trio nursery holding the HTTP server (and, as later layers land,
the libp2p host, the renderer's workers and the delivery queue). Each service reports that it
is ready through ``nursery.start``, so "started" means listening.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from .api import create_app
from .config import Config
from .home import read_token
from .node import Node, open_node

__all__ = ["run_daemon", "serve_http"]


async def serve_http(
    node: Node,
    token: str,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app; report the bound URLs (``http://127.0.0.1:PORT``) once listening."""
    hconfig = HypercornConfig()
    hconfig.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    hconfig.accesslog = None
    hconfig.errorlog = "-"
    hconfig.graceful_timeout = 5
    await serve(create_app(node, token), hconfig, task_status=task_status)


async def run_daemon(config: Config, on_ready: Callable[[list[str], str], None]) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready(urls, did)`` is called once everything listens."""
    async with open_node(config) as node:
        token = read_token(config)
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(serve_http, node, token, config.host, config.port)
            on_ready(urls, node.did)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()
