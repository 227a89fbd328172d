"""Daemons with their web side set up for a test: the owner's password for the web UI, the
fediverse bridge reachable on loopback; and logging in to the web UI with httpx."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.harness.daemons import ARTDAG, DaemonProcess

OWNER_PASSWORD = "correct horse battery staple"


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for a daemon that must know its URL up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bridge_daemon(home: Path, user: str = "alice", **env: str) -> DaemonProcess:
    """A daemon (P2P off, not started) whose fediverse bridge serves ``user`` at its own
    loopback URL and may fetch from and deliver to servers on 127.0.0.1."""
    port = free_port()
    return DaemonProcess(
        home,
        ARTDAG_PORT=str(port),
        ARTDAG_P2P="false",
        ARTDAG_USER=user,
        ARTDAG_DOMAIN=f"http://127.0.0.1:{port}",
        ARTDAG_AP_ALLOW_HTTP_LOOPBACK="true",
        ARTDAG_AP_ALLOW_PRIVATE_FETCH="true",
        **env,
    )


@contextmanager
def webui_daemon(
    home: Path, password: str = OWNER_PASSWORD, config_toml: str | None = None
) -> Iterator[DaemonProcess]:
    """A real daemon (P2P off) whose owner password is ``password``, set by ``artdag init``;
    ``config_toml`` is written to the home first."""
    daemon = DaemonProcess(home, ARTDAG_P2P="false")
    home.mkdir(parents=True, exist_ok=True)
    if config_toml is not None:
        (home / "config.toml").write_text(config_toml)
    done = subprocess.run(
        [ARTDAG, "init", "--password-stdin"],
        input=f"{password}\n".encode(),
        env=daemon.env(),
        capture_output=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"artdag init failed: {done.stderr.decode(errors='replace')}")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def csrf_of(page: str) -> str:
    """The CSRF token of the (first) form on a web UI page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def log_in_client(
    client: httpx.Client, password: str = OWNER_PASSWORD, next_path: str | None = None
) -> httpx.Response:
    """Log in through the login form with an httpx client (its cookie jar keeps the session);
    returns the response of the form's POST."""
    data = {"password": password, "csrf": csrf_of(client.get("/login").text)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/login", data=data)
