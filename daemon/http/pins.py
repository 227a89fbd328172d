"""Local API of pins and garbage collection (behind the API token, like all of ``/api/v1``).

- ``GET /api/v1/pins[?reason=R]``: every pin with its reasons and what it is;
- ``POST /api/v1/pins`` ``{"cid": ..., "recursive": true}``: pin for the operator (fetching
  what the store lacks);
- ``DELETE /api/v1/pins/<cid>[?all=1]``: drop the operator's reasons (or every reason);
- ``POST /api/v1/pins/policy``: apply the pinning policies now; ``GET``: the last round, the
  policy settings and the most popular works;
- ``POST /api/v1/gc`` ``{"grace_seconds": S}``: collect garbage now, report what was freed.
"""

from __future__ import annotations

import math
from typing import Any

from quart import Response, jsonify, request
from quart_trio import QuartTrio

from daemon.core.pins.service import PinError, PinService
from dag import PIN_REASONS

__all__ = ["add_pin_routes"]


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def add_pin_routes(app: QuartTrio, pins: PinService) -> None:
    config = pins.node.config

    @app.errorhandler(PinError)
    async def refused(exc: PinError) -> Response:
        return _error(400, str(exc))

    @app.get("/api/v1/pins")
    async def local_pins() -> Any:
        reason = request.args.get("reason")
        if reason is not None and reason not in PIN_REASONS:
            return _error(400, f"unknown reason {reason!r} (one of {', '.join(PIN_REASONS)})")
        return jsonify({"pins": [p.to_json() for p in await pins.views(reason)]})

    @app.post("/api/v1/pins")
    async def local_pin_add() -> Any:
        body = await request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("cid"), str):
            return _error(400, 'expected a JSON body {"cid": "...", "recursive": true}')
        recursive = body.get("recursive", True)
        if not isinstance(recursive, bool):
            return _error(400, "recursive must be true or false")
        view = await pins.add(body["cid"], recursive=recursive)
        response = jsonify(view.to_json())
        response.status_code = 201
        return response

    @app.delete("/api/v1/pins/<cid>")
    async def local_pin_remove(cid: str) -> Any:
        every = request.args.get("all", "") in ("1", "true", "yes")
        removed = await pins.remove(cid, every_reason=every)
        return jsonify({"cid": cid, "removed": list(removed)})

    @app.get("/api/v1/pins/policy")
    async def pin_policy() -> Any:
        return jsonify(
            {
                "follow_creators": list(config.pinning.follow_creators),
                "popular_count": config.pinning.popular_count,
                "quota_bytes": config.pinning.quota_bytes,
                "usage": _usage_json(await pins.node.store.usage()),
                "last_round": pins.last_round.to_json() if pins.last_round else None,
                "last_gc": pins.last_gc,
                "popular": await pins.top(max(config.pinning.popular_count, 10)),
            }
        )

    @app.post("/api/v1/pins/policy")
    async def pin_policy_round() -> Any:
        return jsonify((await pins.policy_round()).to_json())

    @app.post("/api/v1/gc")
    async def collect_garbage() -> Any:
        body = await request.get_json(silent=True)
        grace: float | None = None
        if isinstance(body, dict) and body.get("grace_seconds") is not None:
            value = body["grace_seconds"]
            if isinstance(value, bool) or not isinstance(value, int | float):
                return _error(400, "grace_seconds must be a number of seconds")
            if not math.isfinite(value) or value < 0:
                return _error(400, "grace_seconds must be 0 or more")
            grace = float(value)
        report = await pins.collect(grace)
        return jsonify(report.to_json())


def _usage_json(usage: Any) -> dict[str, int]:
    return {"blocks": usage.blocks, "bytes": usage.bytes}
