"""JSON API of the network: ``/api/v1/p2p/...`` (id, peers, connect, get).

``POST /api/v1/p2p/get?cid=...`` answers with newline-delimited JSON: progress events
``{"blocks": n, "bytes": n}`` while blocks arrive, then ``{"done": {...}}`` or
``{"error": "..."}``; the fetch itself runs in the app's nursery so a client that hangs up
does not leave half a task behind, only a finished or cancelled fetch.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import trio
from quart import Blueprint, Response, current_app, jsonify, request
from quart_trio import QuartTrio

import dag
from daemon.http import context
from daemon.nodeapi.network import Fetched
from dag import cid_to_str, parse_cid
from p2p.errors import P2PError

if TYPE_CHECKING:
    from p2p.network import Network

__all__ = ["p2p_routes"]

log = logging.getLogger("artdag.daemon")

PROGRESS_EVERY_S = 0.2


p2p_routes = Blueprint("p2p", __name__)


def _network() -> Network:
    """The daemon's running network; P2PError (502) when ``[p2p]`` is off."""
    network = context.services().network
    if network is None:
        raise P2PError("the p2p network is disabled on this node ([p2p] enabled = false)")
    return network


@p2p_routes.get("/api/v1/p2p/id")
async def p2p_id() -> Any:
    _network()
    return jsonify((await context.api().network.id()).to_json())


@p2p_routes.get("/api/v1/p2p/peers")
async def p2p_peers() -> Any:
    _network()
    return jsonify({"peers": await context.api().network.peers()})


@p2p_routes.get("/api/v1/p2p/gossip")
async def p2p_gossip() -> Any:
    """Recent gossip in and out, newest last (``?limit=``, at most 2000)."""
    try:
        limit = max(1, min(int(request.args.get("limit", 100)), 2000))
    except ValueError:
        raise P2PError("limit must be an integer") from None
    network = _network()
    events = list(network.gossip_log)[-limit:]
    gossip = network.gossip
    mesh = {t: sorted(gossip.mesh_peers(t)) for t in gossip.topics} if gossip else {}
    peers = {t: sorted(gossip.topic_peers(t)) for t in gossip.topics} if gossip else {}
    return jsonify({"events": events, "mesh": mesh, "topic_peers": peers})


@p2p_routes.post("/api/v1/p2p/connect")
async def p2p_connect() -> Any:
    body = await request.get_json(force=True, silent=True) or {}
    addr = body.get("addr")
    if not isinstance(addr, str) or not addr:
        response = jsonify({"error": 'body must be {"addr": "/ip4/.../p2p/<id>"}'})
        response.status_code = 400
        return response
    _network()
    with trio.fail_after(30):
        peer = await context.api().network.connect(addr)
    return jsonify({"peer_id": peer})


@p2p_routes.post("/api/v1/p2p/get")
async def p2p_get() -> Any:
    cid = cid_to_str(parse_cid(request.args.get("cid", "")))
    _network()
    try:
        block_timeout = float(request.args.get("timeout", 60))
    except ValueError:
        raise P2PError("timeout must be a number of seconds") from None
    if not 0 < block_timeout <= 3600:
        raise P2PError("timeout must be between 0 and 3600 seconds")
    send, receive = trio.open_memory_channel[dict[str, Any]](64)
    fetch = _Fetch(context.api().network, cid, block_timeout, send)
    cast(QuartTrio, current_app).nursery.start_soon(fetch.run)  # outlives this request

    async def events() -> AsyncIterator[bytes]:
        async with receive:
            async for event in receive:
                yield (json.dumps(event) + "\n").encode()

    return Response(events(), content_type="application/x-ndjson")


class _Fetch:
    """One ``p2p/get`` in the app's nursery: progress events at most every
    :data:`PROGRESS_EVERY_S`, then ``done`` or ``error``."""

    def __init__(
        self, api: Any, cid: str, block_timeout: float, send: trio.MemorySendChannel[Any]
    ) -> None:
        self.api, self.cid, self.block_timeout, self.send = api, cid, block_timeout, send
        self.last = 0.0

    def progress(self, done: int, known: int) -> None:
        now = trio.current_time()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            with contextlib.suppress(trio.WouldBlock):
                self.send.send_nowait({"blocks": done, "known": known})

    async def run(self) -> None:
        async with self.send:
            try:
                try:
                    result: Fetched = await self.api.get(
                        self.cid, self.block_timeout, self.progress
                    )
                except (P2PError, dag.DagError) as exc:
                    await self.send.send({"error": str(exc)})
                    return
                except Exception as exc:
                    log.exception("fetch of %s failed", self.cid)
                    await self.send.send({"error": f"fetch failed: {exc}"})
                    return
                await self.send.send({"done": result.to_json()})
            except trio.BrokenResourceError:
                pass  # the client hung up; the blocks fetched so far stay in the store
