"""The fediverse page: ``/fediverse`` shows how a Mastodon user finds the creator (the handle
and the actor URL), the followers, the delivery queue (counts by state and the latest rows,
``?state=`` filters), and the domain blocks; ``POST /fediverse/block`` and
``POST /fediverse/unblock`` change the blocks (the settings page posts to them too).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, redirect, request, url_for

from .page_common import checked_form, login_required, notice, page
from .services import Row, WebServices

__all__ = ["DELIVERY_STATES", "register"]

DELIVERY_STATES = ("queued", "in-flight", "delivered", "retry-wait", "dead")
LATEST = 50
# where a block form returns to (a fixed list: no redirect to a page the form names)
_BACK = {"fediverse": "webui.fediverse", "settings": "webui.settings"}


def register(bp: Blueprint, services: WebServices) -> None:
    @bp.get("/fediverse")
    @login_required
    async def fediverse() -> Response:
        fediverse = services.fediverse
        if fediverse is None:
            return await page("fediverse.html", title="Fediverse", bridge=None)
        state = (request.args.get("state") or "").strip() or None
        problem = None
        bridge: Row = await fediverse.followers()
        try:
            deliveries = await fediverse.deliveries(state, LATEST)
        except ValueError as exc:
            problem, state = str(exc), None
            deliveries = await fediverse.deliveries(None, LATEST)
        stats = dict(deliveries.get("stats") or {})
        next_due = stats.pop("next_due", None)
        return await page(
            "fediverse.html",
            title="Fediverse",
            bridge=bridge,
            me=services.node.identity(),
            stats=stats,
            next_due=next_due,
            deliveries=deliveries.get("deliveries") or [],
            state=state,
            states=list(stats) or list(DELIVERY_STATES),
            problem=problem,
        )

    async def change_block(block: bool) -> Any:
        form = await checked_form()
        back = url_for(_BACK.get(form.get("back", ""), "webui.fediverse"))
        domain = (form.get("domain") or "").strip()
        fediverse = services.fediverse
        if fediverse is None:
            notice("The fediverse bridge is off on this node: there are no domain blocks.")
        elif not domain:
            notice("Name a domain, like spam.example.")
        elif block:
            try:
                name = await fediverse.block(domain)
            except ValueError as exc:
                notice(f"Not blocked: {exc}")
            else:
                notice(f"Blocked {name} and its subdomains.")
        else:
            try:
                lifted = await fediverse.unblock(domain)
            except ValueError as exc:
                notice(f"Not unblocked: {exc}")
            else:
                notice(f"Unblocked {domain}." if lifted else f"{domain} was not blocked here.")
        return redirect(back, 303)

    @bp.post("/fediverse/block")
    @login_required
    async def fediverse_block() -> Any:
        return await change_block(True)

    @bp.post("/fediverse/unblock")
    @login_required
    async def fediverse_unblock() -> Any:
        return await change_block(False)
