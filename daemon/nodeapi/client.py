"""Finding the running daemon: ``$ARTDAG_HOME/daemon.json`` says where it listens (written
once everything is ready, removed when it stops, like Kubo's ``api`` file); the calls
themselves go through :mod:`daemon.nodeapi.remote`."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from typing import Any

from daemon.config import Config

__all__ = [
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
