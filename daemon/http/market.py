"""JSON API of the render market's ledger: ``/api/v1/jobs``, ``/api/v1/jobs/<id>`` and
``/api/v1/volunteers`` (read only; the market service writes the ledger), over the node API's
market. A node that runs no market (P2P off) answers 404.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

from daemon.core.market.context import MarketNotRunning
from daemon.http import context
from daemon.nodeapi.market import NoSuchJob

__all__ = ["bp"]

bp = Blueprint("market_api", __name__)


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.errorhandler(MarketNotRunning)
@bp.errorhandler(NoSuchJob)
async def not_here(exc: Exception) -> Response:
    return _error(404, str(exc))


@bp.get("/api/v1/jobs")
async def list_jobs() -> Any:
    role = request.args.get("role") or None
    try:
        limit = int(request.args.get("limit", 200))
    except ValueError:
        return _error(400, "limit must be an integer")
    try:
        rows = await context.api().market.jobs(role, limit)
    except ValueError as exc:  # the role or the limit
        return _error(400, str(exc))
    return jsonify({"jobs": [r.to_json() for r in rows]})


@bp.get("/api/v1/jobs/<job_id>")
async def get_job(job_id: str) -> Any:
    return jsonify((await context.api().market.job(job_id)).to_json())


@bp.get("/api/v1/volunteers")
async def list_volunteers() -> Any:
    return jsonify((await context.api().market.volunteers()).to_json())
