"""The web UI's frame: the blueprint, login and logout, the home page, and what every page
module shares (:func:`page`, :func:`login_required`, :func:`checked_form`).

Server-rendered Jinja2 (``webui/templates``) with a little JavaScript for progress bars
(``webui/static``); every page works without it. Pages that change state need the owner's
login and the session's CSRF token; the pages of a work (its detail and provenance) are public.
Page modules (``webui/pages_*.py``) each add their routes with a ``register(bp, services)``,
where ``services`` holds one small port per feature (:mod:`webui.services`).
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import unquote, urlsplit

import trio
from quart import (
    Blueprint,
    Response,
    redirect,
    request,
    session,
    url_for,
)
from quart_trio import QuartTrio

from . import pages_assets, pages_fediverse, pages_jobs, pages_recipes, pages_settings
from .auth import LiveSessions, LoginThrottle, PasswordFile, new_csrf_token
from .client_limits import client_address
from .page_common import FormRefused, checked_form, login_required, page
from .services import WebServices

__all__ = ["add_pages"]


def _local_path(text: str) -> bool:
    r"""``text`` is a path on this origin however a browser reads it: one leading ``/``, no
    backslash (browsers read ``/\host`` as ``//host``), no control or other invisible
    character (browsers drop tabs and newlines, so ``/<TAB>/host`` is ``//host`` too), no
    scheme and no host."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    if any(unicodedata.category(char)[0] in "CZ" and char != " " for char in text):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


def _safe_next(target: str | None) -> str:
    """Only local paths after login (no open redirect): ``target`` must be a local path both
    as given and percent-decoded (up to three times, as nested encodings decode), else ``/``."""
    if not target or len(target) > 2048:
        return "/"
    text = target
    for _ in range(4):
        if not _local_path(text):
            return "/"
        decoded = unquote(text)
        if decoded == text:
            return target
        text = decoded
    return "/"  # still changing after three decodings: nothing a browser needs


def add_pages(
    app: QuartTrio,
    services: WebServices,
    *,
    password: PasswordFile,
    secret: bytes,
    sessions: LiveSessions,
    secure_cookies: bool,
    trust_forwarded_for: bool = False,
) -> None:
    """Mount the web UI on ``app``. Failed logins are throttled per client, the client as the
    gateway's rate limit sees it (``trust_forwarded_for``: the ``X-Forwarded-For`` of a
    reverse proxy on this host)."""
    app.secret_key = secret
    app.config["ARTDAG_PASSWORD"] = password
    app.config["ARTDAG_SESSIONS"] = sessions
    app.config.update(
        SESSION_COOKIE_NAME="artdag_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=14 * 86400,
    )
    bp = Blueprint(
        "webui",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    _add_login_routes(bp, password, sessions, trust_forwarded_for)

    @bp.get("/")
    @login_required
    async def home() -> Response:
        status = await services.node.status()
        return await page("home.html", title="Home", node=status, me=services.node.identity())

    for module in (pages_assets, pages_recipes, pages_jobs, pages_fediverse, pages_settings):
        module.register(bp, services)
    app.register_blueprint(bp)


def _add_login_routes(
    bp: Blueprint, password: PasswordFile, sessions: LiveSessions, trust_forwarded_for: bool
) -> None:
    """Login (throttled per client), logout and the refusal page of a form without its CSRF
    token."""
    throttle = LoginThrottle()

    @bp.app_errorhandler(FormRefused)
    async def refused(exc: FormRefused) -> Response:
        response = await page("error.html", status=exc.status, title="Refused", message=str(exc))
        response.headers["Connection"] = "close"  # the body may not have been read
        return response

    @bp.get("/login")
    async def login() -> Response:
        return await page(
            "login.html",
            title="Log in",
            next=_safe_next(request.args.get("next")),
            password_set=password.is_set,
        )

    @bp.post("/login")
    async def login_post() -> Any:
        form = await checked_form(need_login=False)
        client = client_address(
            request.remote_addr,
            request.headers.get("X-Forwarded-For"),
            trust_forwarded_for=trust_forwarded_for,
        )
        wait = throttle.wait(client)
        if wait > 0:
            response = await page(
                "login.html",
                status=429,
                title="Log in",
                next=_safe_next(form.get("next")),
                password_set=password.is_set,
                error=f"Too many failed attempts: wait {wait:.0f} s.",
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if not password.check(form.get("password", "")):
            throttle.failed(client)
            return await page(
                "login.html",
                status=401,
                title="Log in",
                next=_safe_next(form.get("next")),
                password_set=password.is_set,
                error="Wrong password.",
            )
        throttle.succeeded(client)
        await trio.to_thread.run_sync(sessions.close, session.get("sid"))
        session.clear()
        session["sid"] = await trio.to_thread.run_sync(sessions.open)
        session["owner"] = password.fingerprint()
        session["csrf"] = new_csrf_token()  # a fresh token once logged in
        session.permanent = True
        return redirect(_safe_next(form.get("next")))

    @bp.post("/logout")
    async def logout() -> Any:
        await checked_form()
        await trio.to_thread.run_sync(sessions.close, session.get("sid"))
        session.clear()
        return redirect(url_for("webui.login"))
