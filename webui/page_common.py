"""What every page module shares: the owner's login state, CSRF-checked forms, the page frame
(navigation, security headers, a one-line notice) and the owner-only decorator.

The page modules (``pages``, ``pages_assets``, ...) import this one; it imports none of them,
so the pages import one another in one direction only.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from quart import Response, current_app, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict

from .auth import LiveSessions, PasswordFile, new_csrf_token, tokens_match

__all__ = [
    "FormRefused",
    "checked_form",
    "csrf_token",
    "logged_in",
    "login_required",
    "notice",
    "page",
]

P = ParamSpec("P")
T = TypeVar("T")

NAV = [
    ("webui.home", "Home"),
    ("webui.assets", "Assets"),
    ("webui.recipes", "Recipes"),
    ("webui.jobs", "Jobs"),
    ("webui.fediverse", "Fediverse"),
    ("webui.settings", "Settings"),
]


def logged_in() -> bool:
    """The owner's session: still live (not logged out) and made with the current password
    (``artdag passwd`` ends it)."""
    password: PasswordFile = current_app.config["ARTDAG_PASSWORD"]
    sessions: LiveSessions = current_app.config["ARTDAG_SESSIONS"]
    given = session.get("owner")
    return (
        isinstance(given, str)
        and tokens_match(given, password.fingerprint())
        and sessions.is_live(session.get("sid"))
    )


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = new_csrf_token()
        session["csrf"] = token
    return token


class FormRefused(Exception):
    """A POST without the session's CSRF token (or not logged in)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def checked_form(*, need_login: bool = True) -> MultiDict[str, str]:
    """The POSTed form after the CSRF check (and the login check); raises FormRefused."""
    if need_login and not logged_in():
        raise FormRefused(401, "log in first")
    form = await request.form
    given = form.get("csrf") or request.headers.get("X-CSRF-Token")
    if not tokens_match(given, session.get("csrf")):
        raise FormRefused(403, "missing or wrong CSRF token: reload the page and try again")
    return form


async def page(template: str, status: int = 200, **context: Any) -> Response:
    """Render ``template`` inside the frame (nav, login state, CSRF token, flash message)."""
    body = await render_template(
        template,
        nav=NAV,
        logged_in=logged_in(),
        csrf=csrf_token(),
        notice=session.pop("notice", None),
        **context,
    )
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self' "
        "'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


def notice(message: str) -> None:
    """A one-line message shown on the next page (after a redirect)."""
    session["notice"] = message


def login_required(
    fn: Callable[P, Awaitable[Any]],
) -> Callable[P, Awaitable[Any]]:
    """Pages for the owner only: a GET redirects to the login page, a POST gets 401."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if not logged_in():
            if request.method in ("GET", "HEAD"):
                return redirect(url_for("webui.login", next=request.full_path.rstrip("?")))
            # The body was not read: close the connection rather than leave it half-read.
            return Response(
                "log in first\n",
                status=401,
                content_type="text/plain",
                headers={"Connection": "close"},
            )
        return await fn(*args, **kwargs)

    return wrapper
