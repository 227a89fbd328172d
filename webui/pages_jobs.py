"""The jobs page: the render market's jobs on this node and its volunteers' credits.

``GET /jobs`` (login) lists the market's jobs newest first — the ones this node asked for
(``requester``) and the ones it saw as a volunteer (``volunteer``), filtered with
``?role=`` — and the volunteers it has dealt with, best reputation first, with their credit
(accepted, rejected, expired results, rendering time). Without the market (P2P off) the page
says so.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, request

from .page_common import login_required, page
from .services import Row, WebServices

__all__ = ["ROLES", "register"]

ROLES = ("requester", "volunteer")
JOB_LIMIT = 200


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _job_view(job: Row) -> Row:
    return job | {
        "created_text": _when(job.get("created")),
        "updated_text": _when(job.get("updated")),
        "render_s": round((job.get("render_ms") or 0) / 1000, 1),
    }


def _volunteer_view(v: Row) -> Row:
    return v | {
        "rendered_s": round((v.get("rendered_ms") or 0) / 1000, 1),
        "last_seen_text": _when(v.get("last_seen")),
        "reputation_text": f"{float(v.get('reputation') or 0):.2f}",
    }


def register(bp: Blueprint, services: WebServices) -> None:
    @bp.get("/jobs")
    @login_required
    async def jobs() -> Response:
        role: Any = request.args.get("role") or None
        if role not in ROLES:
            role = None
        market = services.market
        if market is None:
            return await page("jobs.html", title="Jobs", market=False, role=role, roles=ROLES)
        rows = [_job_view(j) for j in await market.jobs(role, JOB_LIMIT)]
        volunteers = [_volunteer_view(v) for v in await market.volunteers()]
        return await page(
            "jobs.html",
            title="Jobs",
            market=True,
            role=role,
            roles=ROLES,
            jobs=rows,
            limit=JOB_LIMIT,
            volunteers=volunteers,
        )
