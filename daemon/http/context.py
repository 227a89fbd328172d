"""How a route reaches the node: the app's :class:`~daemon.services.Services` and node API.

Routes are module-level functions on a Blueprint per feature (``daemon/http/<feature>.py``);
:func:`daemon.http.app.create_app` calls :func:`install` once, and a route asks for what it
needs with :func:`services` or :func:`api` instead of closing over objects.
"""

from __future__ import annotations

from quart import Quart, current_app

from daemon.nodeapi import NodeApi, local_api
from daemon.services import Services

__all__ = ["api", "install", "services"]

_SERVICES = "artdag.services"
_API = "artdag.api"


def install(app: Quart, services: Services) -> None:
    app.extensions[_SERVICES] = services
    app.extensions[_API] = local_api(services)


def services() -> Services:
    """The services of the node this app serves."""
    return current_app.extensions[_SERVICES]


def api() -> NodeApi:
    """The in-process node API over those services (what the remote API calls reach)."""
    return current_app.extensions[_API]
