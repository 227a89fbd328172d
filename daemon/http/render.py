"""JSON API of rendering: effects, recipes, renders and provenance, over the node API's render.

- ``GET /api/v1/effects``: ``{"effects": [EffectInfo]}``.
- ``POST /api/v1/recipes`` (body: the YAML recipe): ``RecipeAdded``.
- ``POST /api/v1/render``: the body is ``{"recipe": CID or path, "inputs": {name: cid},
  "params": {node.param: value}, "replicas": k, "verify": bool, "deadline": seconds}`` for a
  render on the market (the default), or with ``"market": false`` (and ``"fuse": bool``) a
  render on this node. The answer is newline-delimited JSON: progress events (one per step as
  it is published, leased out, reused or finished on the market; ``{"frames": n}`` here), then
  ``{"done": RenderDone}`` or ``{"error": "..."}``. The render runs in the app's nursery: a
  client that hangs up does not stop it, and its result is cached and announced like any other.
- ``GET /api/v1/provenance/<cid>?format=lineage|tree|json|dot|svg&max_nodes=n``:
  ``ProvenanceText``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import trio
from quart import Blueprint, Response, current_app, jsonify, request
from quart_trio import QuartTrio

import dag
from daemon.core.market.context import MarketNotRunning
from daemon.http import context
from daemon.nodeapi.render import PROVENANCE_FORMATS, RenderRequest, RenderRequestError
from daemon.services import NeedsDaemon
from provenance import RecordError
from renderer import RenderError

__all__ = ["RenderRequestError", "bp"]

log = logging.getLogger("artdag.daemon")

KEEPALIVE_S = 5.0

bp = Blueprint("render_api", __name__)


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.errorhandler(RenderError)  # RecipeError too; the app maps dag and record errors
@bp.errorhandler(RenderRequestError)
@bp.errorhandler(MarketNotRunning)
@bp.errorhandler(NeedsDaemon)
async def refused(exc: Exception) -> Response:
    return _error(400, str(exc))


@bp.get("/api/v1/effects")
async def effects() -> Any:
    rows = await context.api().render.effects()
    return jsonify({"effects": [row.to_json() for row in rows]})


@bp.post("/api/v1/recipes")
async def add_recipe() -> Any:
    body = await request.get_data(as_text=False)
    text = body if isinstance(body, bytes) else body.encode()
    added = await context.api().render.add_recipe(text)
    return jsonify(added.to_json())


@bp.get("/api/v1/provenance/<cid>")
async def provenance(cid: str) -> Any:
    fmt = request.args.get("format", "lineage")
    if fmt not in PROVENANCE_FORMATS:
        formats = ", ".join(PROVENANCE_FORMATS)
        raise RenderRequestError(f"format must be one of {formats}, not {fmt!r}")
    try:
        max_nodes = int(request.args.get("max_nodes", 5000))
    except ValueError:
        raise RenderRequestError("max_nodes must be an integer") from None
    text = await context.api().render.provenance(cid, fmt, max_nodes)
    return jsonify(text.to_json())


@bp.post("/api/v1/render")
async def render() -> Any:
    wanted = RenderRequest.from_json(await request.get_json(force=True, silent=True))
    if wanted.market:
        await context.services().market()  # refused here, with a status, if no market runs
    send, receive = trio.open_memory_channel[dict[str, Any]](256)

    def progress(event: dict[str, Any]) -> None:
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
            send.send_nowait(event)

    async def run() -> None:
        async with send:
            try:
                done = await context_api.render.render(wanted, progress)
            except (RenderError, RecordError, dag.DagError, ValueError, NeedsDaemon) as exc:
                progress({"error": str(exc)})
                return
            except Exception as exc:
                log.exception("render failed")
                progress({"error": f"render failed: {exc}"})
                return
            progress({"done": done.to_json()})

    context_api = context.api()  # the app context is gone once the response streams
    cast(QuartTrio, current_app).nursery.start_soon(run)
    return Response(_events(receive), content_type="application/x-ndjson")


async def _events(receive: trio.MemoryReceiveChannel[dict[str, Any]]) -> AsyncIterator[bytes]:
    """The events, and a ``{"waiting": true}`` line after each quiet stretch so that the client
    and any proxy see the stream is alive while volunteers render."""
    async with receive:
        while True:
            with trio.move_on_after(KEEPALIVE_S):
                try:
                    event = await receive.receive()
                except trio.EndOfChannel:
                    return
                yield (json.dumps(event) + "\n").encode()
                continue
            yield b'{"waiting": true}\n'
