"""The owner's password, the session secret, CSRF tokens and login throttling.

The password is stored as an scrypt hash (``hashlib.scrypt``, RFC 7914: N=2^15, r=8, p=1, 16-byte
salt) in ``$ARTDAG_HOME/web-password`` (mode 0600), written at ``artdag init`` or by
``artdag passwd``. Sessions are Quart's signed cookies (HttpOnly, SameSite=Lax, Secure on
https) keyed by a random secret in ``$ARTDAG_HOME/web-secret`` (0600). A signed cookie alone
cannot be taken back, so each login also gets a random session id, kept with its expiry in
:class:`LiveSessions` (``$ARTDAG_HOME/web-sessions``, 0600, so it survives a restart): logging
out removes it, and a cookie saved before then opens nothing. Changing the password ends every
session as well (a session carries the password's fingerprint). Every form carries the
session's CSRF token, compared in constant time. :class:`LoginThrottle` is pure data: after
five failures from one client within 15 minutes, that client waits, doubling up to 15 minutes;
the client is the address :func:`webui.client_limits.client_address` gives, as for the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "LiveSessions",
    "LoginThrottle",
    "PasswordError",
    "PasswordFile",
    "hash_password",
    "load_or_create_secret",
    "new_csrf_token",
    "tokens_match",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 8
_N, _R, _P = 1 << 15, 8, 1
_MAXMEM = 64 << 20


class PasswordError(ValueError):
    """A password that cannot be set (too short), or an unreadable password file."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for ``password``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison of the hashes)."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class PasswordFile:
    """The owner's password hash at ``path``."""

    path: Path

    @property
    def is_set(self) -> bool:
        return self.path.is_file() and bool(self.path.read_text().strip())

    def set(self, password: str) -> None:
        _write_secret_file(self.path, hash_password(password) + "\n")

    def fingerprint(self) -> str | None:
        """A short digest of the stored hash: sessions carry it, so changing the password
        ends every session at once."""
        try:
            stored = self.path.read_text().strip()
        except OSError:
            return None
        return hashlib.sha256(stored.encode()).hexdigest()[:16] if stored else None

    def check(self, password: str) -> bool:
        """False when no password is set (nobody can log in until ``artdag passwd``)."""
        try:
            stored = self.path.read_text()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise PasswordError(f"cannot read {self.path}: {exc}") from None
        return verify_password(password, stored)


def load_or_create_secret(path: Path) -> bytes:
    """The session-signing secret (32 random bytes, hex in a 0600 file), created on first use."""
    try:
        text = path.read_text().strip()
        if len(text) >= 64:
            return bytes.fromhex(text)
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(32)
    _write_secret_file(path, secret.hex() + "\n")
    return secret


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class LoginThrottle:
    """Failed logins per client; ``wait(client, now)`` is the seconds it must still wait."""

    free_failures: int = 5
    window: float = 900.0
    max_wait: float = 900.0
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, client: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(client, []) if now - t < self.window]
        if kept:
            self._failures[client] = kept
        else:
            self._failures.pop(client, None)
        return kept

    def wait(self, client: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        recent = self._recent(client, now)
        extra = len(recent) - self.free_failures
        if extra < 0:
            return 0.0
        delay = min(self.max_wait, 2.0 ** min(extra, 20))
        return max(0.0, recent[-1] + delay - now)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._recent(client, now)
        self._failures.setdefault(client, []).append(now)
        if len(self._failures) > 10_000:  # forget the oldest clients first
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            self._failures.pop(oldest, None)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


class LiveSessions:
    """The web sessions that are still open: session id -> expiry (Unix seconds), in a JSON
    file (mode 0600) rewritten atomically on every login and logout, read once at start.

    Checking a session is a dictionary lookup (no I/O); :meth:`open` and :meth:`close` write
    the file, so call them from a worker thread. At most ``max_sessions`` are kept: a new login
    past that ends the session that expires first. A file that cannot be read as this JSON
    counts as empty (every session ends, nothing worse: the owner logs in again)."""

    def __init__(self, path: Path, *, lifetime: float = 14 * 86400, max_sessions: int = 64):
        self.path = path
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._live: dict[str, float] = {}
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {}
        if isinstance(loaded, dict):
            self._live = {
                k: float(v)
                for k, v in loaded.items()
                if isinstance(k, str) and isinstance(v, int | float)
            }

    def __len__(self) -> int:
        return len(self._live)

    def is_live(self, session_id: object, now: float | None = None) -> bool:
        if not isinstance(session_id, str):
            return False
        expires = self._live.get(session_id)
        return expires is not None and expires > (time.time() if now is None else now)

    def open(self, now: float | None = None) -> str:
        """A new session id, stored before it is returned."""
        now = time.time() if now is None else now
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            live = {k: v for k, v in self._live.items() if v > now}
            while len(live) >= self.max_sessions:
                live.pop(min(live, key=live.__getitem__))
            live[session_id] = now + self.lifetime
            self._save(live)
        return session_id

    def close(self, session_id: object) -> None:
        """End ``session_id`` (nothing if it is not live)."""
        with self._lock:
            if isinstance(session_id, str) and session_id in self._live:
                live = dict(self._live)
                del live[session_id]
                self._save(live)

    def _save(self, live: dict[str, float]) -> None:
        _write_secret_file(self.path, json.dumps(live, sort_keys=True) + "\n")
        self._live = live
