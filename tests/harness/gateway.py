"""The real gateway app (webui's ``/ipfs/<cid>`` routes over a node) served by hypercorn on
127.0.0.1, with an httpx client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

from daemon.core.node import Node
from webui import add_gateway_routes


@asynccontextmanager
async def running_gateway(node: Node, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Serve the gateway routes over ``node`` (``options`` go to ``add_gateway_routes``)."""
    app = QuartTrio("gateway-test")
    add_gateway_routes(app, node, **options)
    hconfig = HypercornConfig()
    hconfig.bind = ["127.0.0.1:0"]
    hconfig.accesslog = None
    hconfig.graceful_timeout = 1
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve, app, hconfig)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            yield client
        nursery.cancel_scope.cancel()
