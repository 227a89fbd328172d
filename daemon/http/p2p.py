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
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio

import dag
from daemon.core.node import Node
from dag import cid_to_str, parse_cid
from p2p.errors import P2PError

if TYPE_CHECKING:
    from p2p.network import Network

__all__ = ["add_p2p_routes"]

log = logging.getLogger("artdag.daemon")

PROGRESS_EVERY_S = 0.2


def _network(network: Network | None) -> Network:
    if network is None:
        raise P2PError("the p2p network is disabled on this node ([p2p] enabled = false)")
    return network


def add_p2p_routes(app: QuartTrio, node: Node, running: Network | None) -> None:
    @app.get("/api/v1/p2p/id")
    async def p2p_id() -> Any:
        info = _network(running).info()
        return jsonify({"peer_id": info.peer_id, "addrs": info.addrs, "did": node.did})

    @app.get("/api/v1/p2p/peers")
    async def p2p_peers() -> Any:
        return jsonify({"peers": [row.to_json() for row in _network(running).peers()]})

    @app.get("/api/v1/p2p/gossip")
    async def p2p_gossip() -> Any:
        """Recent gossip in and out, newest last (``?limit=``, at most 2000)."""
        try:
            limit = max(1, min(int(request.args.get("limit", 100)), 2000))
        except ValueError:
            raise P2PError("limit must be an integer") from None
        network = _network(running)
        log = list(network.gossip_log)[-limit:]
        gossip = network.gossip
        mesh = {t: sorted(gossip.mesh_peers(t)) for t in gossip.topics} if gossip else {}
        peers = {t: sorted(gossip.topic_peers(t)) for t in gossip.topics} if gossip else {}
        return jsonify({"events": log, "mesh": mesh, "topic_peers": peers})

    @app.post("/api/v1/p2p/connect")
    async def p2p_connect() -> Any:
        body = await request.get_json(force=True, silent=True) or {}
        addr = body.get("addr")
        if not isinstance(addr, str) or not addr:
            response = jsonify({"error": 'body must be {"addr": "/ip4/.../p2p/<id>"}'})
            response.status_code = 400
            return response
        with trio.fail_after(30):
            peer = await _network(running).connect(addr)
        return jsonify({"peer_id": peer})

    @app.post("/api/v1/p2p/get")
    async def p2p_get() -> Any:
        cid = parse_cid(request.args.get("cid", ""))
        network = _network(running)
        try:
            block_timeout = float(request.args.get("timeout", 60))
        except ValueError:
            raise P2PError("timeout must be a number of seconds") from None
        if not 0 < block_timeout <= 3600:
            raise P2PError("timeout must be between 0 and 3600 seconds")
        send, receive = trio.open_memory_channel[dict[str, Any]](64)

        async def fetch() -> None:
            last = 0.0
            async with send:

                def progress(done: int, known: int) -> None:
                    nonlocal last
                    now = trio.current_time()
                    if now - last >= PROGRESS_EVERY_S:
                        last = now
                        with contextlib.suppress(trio.WouldBlock):
                            send.send_nowait({"blocks": done, "known": known})

                try:
                    try:
                        result = await network.get(
                            cid, progress=progress, block_timeout=block_timeout
                        )
                    except (P2PError, dag.DagError) as exc:
                        await send.send({"error": str(exc)})
                        return
                    except Exception as exc:
                        log.exception("fetch of %s failed", cid_to_str(cid))
                        await send.send({"error": f"fetch failed: {exc}"})
                        return
                    await node.store.pin(cid)
                    await node.store.flush()
                    done = {
                        "cid": cid_to_str(cid),
                        "blocks": result.blocks,
                        "bytes": result.bytes,
                        "fetched": result.fetched,
                        "already_had": result.already_had,
                    }
                    await send.send({"done": done})
                except trio.BrokenResourceError:
                    pass  # the client hung up; the blocks fetched so far stay in the store

        app.nursery.start_soon(fetch)

        async def events() -> AsyncIterator[bytes]:
            async with receive:
                async for event in receive:
                    yield (json.dumps(event) + "\n").encode()

        return Response(events(), content_type="application/x-ndjson")
