"""JSON API of rendering on the network: ``POST /api/v1/render``.

The body is ``{"recipe": CID or path, "inputs": {name: cid}, "params": {node.param: value},
"replicas": k, "verify": bool, "deadline": seconds}``. The answer is newline-delimited JSON:
one event per step as it is published, leased out, reused or finished, then ``{"done": {...}}``
or ``{"error": "..."}``. The render runs in the app's nursery: a client that hangs up does
not stop it, and its result is cached and announced like any other.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

import dag
from daemon.core.node import Node
from daemon.core.render.remote import render_on_network
from dag import cid_to_str
from provenance import RecordError
from renderer import RenderError

__all__ = ["add_render_routes"]

log = logging.getLogger("artdag.daemon")

KEEPALIVE_S = 5.0


class RenderRequestError(ValueError):
    """The body of a render request is malformed."""


def _body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RenderRequestError('body must be a JSON object {"recipe": ..., "inputs": {...}}')
    recipe = raw.get("recipe")
    if not isinstance(recipe, str) or not recipe:
        raise RenderRequestError('"recipe" must be a recipe CID or a YAML path')
    inputs, params = raw.get("inputs", {}), raw.get("params", {})
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise RenderRequestError('"inputs" must map input names to CIDs')
    if not isinstance(params, dict):
        raise RenderRequestError('"params" must be an object of NODE.PARAM: value')
    replicas = raw.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or not 1 <= replicas <= 9):
        raise RenderRequestError('"replicas" must be an integer 1..9')
    deadline = raw.get("deadline")
    if deadline is not None and (not isinstance(deadline, int | float) or deadline <= 0):
        raise RenderRequestError('"deadline" must be a positive number of seconds')
    verify = raw.get("verify", False)
    if not isinstance(verify, bool):
        raise RenderRequestError('"verify" must be true or false')
    return {
        "ref": recipe,
        "inputs": inputs,
        "params": params,
        "replicas": replicas,
        "verify": verify,
        "deadline_s": deadline,
    }


def add_render_routes(app: QuartTrio, node: Node) -> None:
    @app.post("/api/v1/render")
    async def render() -> Any:
        args = _body(await request.get_json(force=True, silent=True))
        market = node.market
        if market is None:
            raise RenderRequestError("the render market is not running on this node (no p2p)")
        send, receive = trio.open_memory_channel[dict[str, Any]](256)

        def progress(event: dict[str, Any]) -> None:
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                send.send_nowait(event)

        async def run() -> None:
            async with send:
                try:
                    outcome = await render_on_network(
                        market, market.renders, progress=progress, **args
                    )
                except (RenderError, RecordError, dag.DagError, ValueError) as exc:
                    progress({"error": str(exc)})
                    return
                except Exception as exc:
                    log.exception("network render failed")
                    progress({"error": f"render failed: {exc}"})
                    return
                result = outcome.result
                progress(
                    {
                        "done": {
                            "output": cid_to_str(outcome.output),
                            "provenance": cid_to_str(outcome.provenance),
                            "recipe": cid_to_str(outcome.recipe),
                            "content_key": outcome.content_key,
                            "rendered": result.rendered,
                            "cached": result.cached,
                            "seconds": round(result.seconds, 3),
                        }
                    }
                )

        app.nursery.start_soon(run)

        async def events() -> AsyncIterator[bytes]:
            """The events, and a ``{"waiting": true}`` line after each quiet stretch so that
            the client and any proxy see the stream is alive while volunteers render."""
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

        return Response(events(), content_type="application/x-ndjson")
