"""JSON API of the render market's ledger: ``/api/v1/jobs``, ``/api/v1/jobs/<id>`` and
``/api/v1/volunteers`` (read only; the market service writes the ledger).

The store is ``node.market_store`` (``None`` when this node runs no market); its calls are
synchronous SQLite, so routes run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from daemon.core.market.store import JOB_ROLES, MarketStore

if TYPE_CHECKING:
    from daemon.core.node import Node

__all__ = ["DEFAULT_TRUST_AFTER", "MAX_JOBS_LISTED", "add_market_routes"]

DEFAULT_TRUST_AFTER = 5
MAX_JOBS_LISTED = 1000

T = TypeVar("T")


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def add_market_routes(
    app: QuartTrio, node: Node, *, trust_after: int = DEFAULT_TRUST_AFTER
) -> None:
    """``trust_after``: accepted results (and no rejected one) after which a volunteer counts as
    trusted; pass the requester's configured value."""

    async def in_store(call: Callable[[MarketStore], T]) -> T | Response:
        store: MarketStore | None = getattr(node, "market_store", None)
        if store is None:
            return _error(404, "the market is not running on this node")
        return await trio.to_thread.run_sync(call, store)

    @app.get("/api/v1/jobs")
    async def list_jobs() -> Any:
        role = request.args.get("role") or None
        if role is not None and role not in JOB_ROLES:
            return _error(400, f"role must be requester or volunteer, not {role!r}")
        try:
            limit = int(request.args.get("limit", 200))
        except ValueError:
            return _error(400, "limit must be an integer")
        if not 1 <= limit <= MAX_JOBS_LISTED:
            return _error(400, f"limit must be between 1 and {MAX_JOBS_LISTED}")
        rows = await in_store(lambda store: store.jobs(role, limit))
        if isinstance(rows, Response):
            return rows
        return jsonify({"jobs": [r.to_json() for r in rows]})

    @app.get("/api/v1/jobs/<job_id>")
    async def get_job(job_id: str) -> Any:
        def read(store: MarketStore) -> dict[str, Any] | None:
            jobs = store.jobs_by_id(job_id)
            if not jobs:
                return None
            verdict = store.verdict(jobs[0].cache_id)
            return {
                "job_id": job_id,
                "jobs": [j.to_json() for j in jobs],
                "results": [r.to_json() for r in store.results(job_id)],
                "verdict": verdict.to_json() if verdict else None,
            }

        body = await in_store(read)
        if isinstance(body, Response):
            return body
        if body is None:
            return _error(404, f"no job {job_id}")
        return jsonify(body)

    @app.get("/api/v1/volunteers")
    async def list_volunteers() -> Any:
        rows = await in_store(lambda store: store.volunteers())
        if isinstance(rows, Response):
            return rows
        return jsonify(
            {
                "volunteers": [r.to_json(trust_after) for r in rows],
                "trust_after": trust_after,
            }
        )
