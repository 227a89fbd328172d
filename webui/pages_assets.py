"""The assets pages (being written)."""

from __future__ import annotations

from quart import Blueprint, Response

from .pages import login_required, page
from .services import WebServices

__all__ = ["register"]


def register(bp: Blueprint, services: WebServices) -> None:
    @bp.get("/assets")
    @login_required
    async def assets() -> Response:
        return await page("error.html", title="assets", message="not yet")
