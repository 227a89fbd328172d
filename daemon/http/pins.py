"""The pins routes of the node API (behind the API token, like all of ``/api/v1``).

- ``GET /api/v1/pins[?reason=R]``: every pin with its reasons and what it is;
- ``POST /api/v1/pins`` ``{"cid": ..., "recursive": true}``: pin for the operator (fetching
  what the store lacks);
- ``DELETE /api/v1/pins/<cid>[?all=1]``: drop the operator's reasons (or every reason);
- ``POST /api/v1/pins/policy``: apply the pinning policies now; ``GET``: the last round, the
  policy settings and the most popular works;
- ``POST /api/v1/gc`` ``{"grace_seconds": S}``: collect garbage now, report what was freed.

Each parses, calls :mod:`daemon.nodeapi.pins` in-process and serialises; refusals
(:class:`~daemon.core.pins.service.PinError`, a ValueError) answer 400 ``{"error": ...}``.
"""

from __future__ import annotations

import math

from quart import Blueprint, Response, request

from daemon.http import context
from daemon.http.json_body import answer_errors, error, reply

__all__ = ["pins"]

pins = Blueprint("pins", __name__)
answer_errors(pins)


@pins.get("/api/v1/pins")
async def list_pins() -> Response:
    views = await context.api().pins.list(request.args.get("reason"))
    return reply({"pins": [v.to_json() for v in views]})


@pins.post("/api/v1/pins")
async def add_pin() -> Response:
    body = await request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("cid"), str):
        return error(400, 'expected a JSON body {"cid": "...", "recursive": true}')
    recursive = body.get("recursive", True)
    if not isinstance(recursive, bool):
        return error(400, "recursive must be true or false")
    view = await context.api().pins.add(body["cid"], recursive=recursive)
    return reply(view.to_json(), 201)


@pins.delete("/api/v1/pins/<path:cid>")  # path: a malformed CID gets its own error
async def remove_pin(cid: str) -> Response:
    every = request.args.get("all", "") in ("1", "true", "yes")
    removed = await context.api().pins.remove(cid, every_reason=every)
    return reply(removed.to_json())


@pins.get("/api/v1/pins/policy")
async def policy() -> Response:
    return reply((await context.api().pins.policy()).to_json())


@pins.post("/api/v1/pins/policy")
async def policy_round() -> Response:
    return reply((await context.api().pins.policy_round()).to_json())


@pins.post("/api/v1/gc")
async def collect_garbage() -> Response:
    body = await request.get_json(silent=True)
    grace: float | None = None
    if isinstance(body, dict) and body.get("grace_seconds") is not None:
        value = body["grace_seconds"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return error(400, "grace_seconds must be a number of seconds")
        if not math.isfinite(value) or value < 0:
            return error(400, "grace_seconds must be 0 or more")
        grace = float(value)
    report = await context.api().pins.collect(grace)
    return reply(report.to_json())
