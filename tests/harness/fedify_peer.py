"""An independent ActivityPub server (Fedify 2.3.6 on Node) started on loopback for tests.

``tests/peers/fedify/follower.mjs`` is a small follower server built on npm
``@fedify/fedify`` (not written against artdag's code): actor ``bob`` with RSA + Ed25519
keys, personal and shared inbox, followers collection; Fedify verifies every inbox POST's
HTTP signature itself and signs what it sends (RFC 9421 first, draft-cavage after a
refusal, or the other way round with ``first_knock``). An unsigned JSON control API on the
same port makes it act (follow, undo-follow, like, announce) and reports what it received.

Use::

    async with fedify_peer(first_knock="rfc9421", require_signed_fetch=True) as peer:
        info = await peer.follow("http://127.0.0.1:8000/users/alice")
        accept = await peer.wait_for(lambda acts: [a for a in acts if a["type"] == "Accept"])

Install with ``scripts/install-test-peers.sh``. :func:`require_fedify` skips only when
``node``/``npm`` are absent and ``CI`` is unset; a missing ``npm ci`` is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import trio
import trio.testing

FEDIFY_DIR = Path(__file__).resolve().parents[1] / "peers" / "fedify"
FOLLOWER_MJS = FEDIFY_DIR / "follower.mjs"
INSTALL_HINT = "run `scripts/install-test-peers.sh` (npm ci in tests/peers/fedify)"

FirstKnock = Literal["rfc9421", "draft-cavage-http-signatures-12"]

__all__ = [
    "FedifyPeer",
    "FedifyPeerError",
    "fedify_peer",
    "fedify_problem",
    "require_fedify",
]


class FedifyPeerError(RuntimeError):
    """The Fedify peer did not start, died, or a control call failed. ``remote_status`` is
    the HTTP status the remote inbox answered when a delivery was refused (else None)."""

    def __init__(self, message: str, remote_status: int | None = None) -> None:
        super().__init__(message)
        self.remote_status = remote_status


def fedify_problem() -> tuple[str, bool] | None:
    """None if the Fedify peer can start; else (reason, installable). installable=False
    means node/npm themselves are missing, so the install script could not have helped."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return ("Fedify peer needs `node` and `npm` on PATH (not found)", False)
    if not (FEDIFY_DIR / "node_modules" / "@fedify" / "fedify" / "package.json").is_file():
        return (
            f"@fedify/fedify is not installed in {FEDIFY_DIR / 'node_modules'}: {INSTALL_HINT}",
            True,
        )
    return None


def require_fedify() -> None:
    """Skip (toolchain absent, not under CI) or fail (install missing) unless Fedify can run."""
    problem = fedify_problem()
    if problem is None:
        return
    reason, installable = problem
    if installable or os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass
class FedifyPeer:
    """A running follower.mjs: ``url`` (http://127.0.0.1:PORT) and ``actor`` (its actor id)."""

    url: str
    actor: str
    client: httpx.AsyncClient
    stderr: bytearray = field(default_factory=bytearray)

    async def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.request(method, f"{self.url}/control/{path}", json=body)
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text}
        if response.status_code != 200:
            remote = data.get("remote_status")
            raise FedifyPeerError(
                f"fedify peer {method} /control/{path} -> {response.status_code}"
                + (f" (remote answered {remote})" if remote is not None else "")
                + f": {str(data.get('error', data)).strip()}",
                remote,
            )
        return data

    async def follow(self, target: str) -> dict[str, Any]:
        """Look up ``target`` (actor URL or acct:user@host) and send it a signed Follow.
        Returns ``{"follow_id", "target_actor", "inbox"}`` once the POST was answered."""
        result: dict[str, Any] = await self._control("POST", "follow", {"target": target})
        return result

    async def undo_follow(self, target: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._control("POST", "undo-follow", {"target": target})
        return result

    async def like(self, object_id: str, target: str) -> dict[str, Any]:
        body = {"object": object_id, "target": target}
        result: dict[str, Any] = await self._control("POST", "like", body)
        return result

    async def announce(self, object_id: str, target: str) -> dict[str, Any]:
        body = {"object": object_id, "target": target}
        result: dict[str, Any] = await self._control("POST", "announce", body)
        return result

    async def received(self) -> dict[str, list[dict[str, Any]]]:
        """``{"activities": [...], "requests": [...]}`` seen so far (see follower.mjs)."""
        result: dict[str, list[dict[str, Any]]] = await self._control("GET", "received")
        return result

    async def activities(self) -> list[dict[str, Any]]:
        return (await self.received())["activities"]

    async def requests(self) -> list[dict[str, Any]]:
        return (await self.received())["requests"]

    async def followers(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._control("GET", "followers"))["followers"]
        return result

    async def following(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self._control("GET", "following"))["following"]
        return result

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 10.0
    ) -> Any:
        """Poll the received activities every 0.1 s until ``predicate(activities)`` is truthy;
        return its value. Raises trio.TooSlowError after ``timeout`` seconds."""
        with trio.fail_after(timeout):
            while True:
                value = predicate(await self.activities())
                if value:
                    return value
                await trio.sleep(0.1)


@asynccontextmanager
async def fedify_peer(
    *,
    username: str = "bob",
    first_knock: FirstKnock = "rfc9421",
    require_signed_fetch: bool = False,
    start_timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> AsyncIterator[FedifyPeer]:
    """Start follower.mjs on 127.0.0.1 (free port), yield it, kill it on exit."""
    problem = fedify_problem()
    if problem is not None:
        raise FedifyPeerError(problem[0])
    node = shutil.which("node")
    assert node is not None
    argv = [node, str(FOLLOWER_MJS), "--port", "0", "--username", username]
    argv += ["--first-knock", first_knock]
    if require_signed_fetch:
        argv.append("--require-signed-fetch")
    process = await trio.lowlevel.open_process(
        argv,
        stdin=None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    stderr = bytearray()

    async def drain_stderr() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            stderr.extend(chunk)

    async def drain_stdout() -> None:
        assert process.stdout is not None
        async for _chunk in process.stdout:
            pass

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain_stderr)
            ready = await _read_ready_line(process, start_timeout, stderr)
            nursery.start_soon(drain_stdout)
            async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
                yield FedifyPeer(
                    url=ready["url"], actor=ready["actor"], client=client, stderr=stderr
                )
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(5) as cleanup:
            cleanup.shield = True
            await process.wait()


async def _read_ready_line(
    process: trio.Process, timeout: float, stderr: bytearray
) -> dict[str, str]:
    assert process.stdout is not None
    buffer = bytearray()
    with trio.move_on_after(timeout):
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some()
            if not chunk:
                break
            buffer.extend(chunk)
    line = bytes(buffer).split(b"\n", 1)[0]
    try:
        ready = json.loads(line)
        return {"url": str(ready["url"]), "actor": str(ready["actor"])}
    except (ValueError, KeyError, TypeError):
        with trio.move_on_after(2):  # a crashed node has written its error; collect it
            await process.wait()
            await trio.testing.wait_all_tasks_blocked()
        tail = bytes(stderr[-2000:]).decode("utf-8", "replace").strip()
        raise FedifyPeerError(
            f"fedify peer did not print its ready line within {timeout} s "
            f"(got {line[:200]!r}); stderr: {tail or '(empty)'}"
        ) from None
