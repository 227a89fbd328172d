"""Calls to a running daemon's JSON API, for the remote implementation of the node API.

:class:`RemoteCaller` is the one place that speaks HTTP to the daemon: it finds it through
``$ARTDAG_HOME/daemon.json`` (:mod:`daemon.nodeapi.client`), authenticates with the API token,
trusts the daemon's own certificate when it serves https, and turns an error reply into
:class:`~daemon.nodeapi.client.DaemonError` carrying the daemon's one-line reason, so a command
prints the same error with or without a daemon.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from daemon.config import Config
from daemon.home import read_token
from daemon.nodeapi.client import DaemonError, DaemonNotRunning, read_daemon_file

__all__ = ["RemoteCaller", "open_remote"]


class RemoteCaller:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One JSON call; the decoded body, or DaemonError with the daemon's reason."""
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DaemonNotRunning(
                f"cannot reach the daemon at {self.client.base_url}: {exc}"
            ) from None
        return json_or_raise(response)

    async def lines(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Newline-delimited JSON events from a long call (progress, then a result)."""
        try:
            async with self.client.stream(method, path, timeout=None, **kwargs) as response:
                if response.status_code >= 400:
                    await response.aread()
                    json_or_raise(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise DaemonNotRunning(f"lost the daemon at {self.client.base_url}: {exc}") from None

    async def bytes(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[bytes]:
        """A raw body, piece by piece (file contents, CAR files)."""
        try:
            async with self.client.stream(method, path, timeout=None, **kwargs) as response:
                if response.status_code >= 400:
                    await response.aread()
                    json_or_raise(response)
                async for piece in response.aiter_bytes():
                    yield piece
        except httpx.HTTPError as exc:
            raise DaemonNotRunning(f"lost the daemon at {self.client.base_url}: {exc}") from None


def json_or_raise(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code >= 400:
        message = body.get("error") if isinstance(body, dict) else None
        raise DaemonError(message or f"HTTP {response.status_code}")
    return body


@asynccontextmanager
async def open_remote(config: Config) -> AsyncIterator[RemoteCaller]:
    """A caller for the daemon running on ``config.home``; DaemonNotRunning if there is none."""
    info = read_daemon_file(config)
    cert = info.get("tls_cert")  # the daemon serves https with this certificate
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(Path(cert).expanduser())) if cert else True
    )
    async with httpx.AsyncClient(
        base_url=info["api"],
        headers={"Authorization": f"Bearer {read_token(config)}"},
        timeout=30.0,
        verify=verify,
    ) as client:
        yield RemoteCaller(client)
