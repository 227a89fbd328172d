"""Talking to the running daemon from the CLI: ``$ARTDAG_HOME/daemon.json`` says where it
listens (written once everything is ready, removed when it stops, like Kubo's ``api`` file),
and the API token authenticates every call."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from daemon.config import Config
from daemon.home import read_token

__all__ = [
    "DaemonClient",
    "DaemonError",
    "DaemonNotRunning",
    "read_daemon_file",
    "remove_daemon_file",
    "write_daemon_file",
]


class DaemonError(Exception):
    """The daemon refused a call; the message is its one-line reason."""


class DaemonNotRunning(DaemonError):
    """No daemon is running for this home (or its daemon.json is stale)."""


def write_daemon_file(config: Config, info: dict[str, Any]) -> None:
    path = config.home / "daemon.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info | {"pid": os.getpid()}, indent=2) + "\n")
    os.replace(tmp, path)


def remove_daemon_file(config: Config) -> None:
    path = config.home / "daemon.json"
    with suppress(FileNotFoundError, ValueError, OSError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_daemon_file(config: Config) -> dict[str, Any]:
    path = config.home / "daemon.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise DaemonNotRunning(
            f"no daemon is running for {config.home} (start one with: artdag daemon)"
        ) from None
    except ValueError:
        raise DaemonNotRunning(f"{path} is unreadable; restart the daemon") from None
    if not _alive(int(info.get("pid", 0))):
        raise DaemonNotRunning(
            f"the daemon for {config.home} is not running (stale {path}); start: artdag daemon"
        )
    return info


@dataclass
class DaemonClient:
    base_url: str
    token: str
    info: dict[str, Any]

    @classmethod
    def for_config(cls, config: Config) -> DaemonClient:
        info = read_daemon_file(config)
        return cls(info["api"], read_token(config), info)

    def _client(self, timeout: float | None = 30.0) -> httpx.Client:
        cert = self.info.get("tls_cert")  # the daemon serves https with this certificate
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
            verify=ssl.create_default_context(cafile=str(Path(cert).expanduser()))
            if cert
            else True,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._client() as client:
            try:
                response = client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise DaemonNotRunning(
                    f"cannot reach the daemon at {self.base_url}: {exc}"
                ) from None
        return _json_or_raise(response)

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Newline-delimited JSON events from a long call (progress, then a result)."""
        with self._client(timeout=None) as client:
            try:
                with client.stream(method, path, **kwargs) as response:
                    if response.status_code >= 400:
                        response.read()
                        _json_or_raise(response)
                    for line in response.iter_lines():
                        if line.strip():
                            yield json.loads(line)
            except httpx.HTTPError as exc:
                raise DaemonNotRunning(f"lost the daemon at {self.base_url}: {exc}") from None


def _json_or_raise(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code >= 400:
        raise DaemonError(body.get("error") or f"HTTP {response.status_code}")
    return body
