"""Access tokens of the Pinning Service API, kept in ``$ARTDAG_HOME/pinning-tokens`` (0600).

One token per client device, named, revocable one by one (as the spec's security section asks).
The file holds only the SHA-256 of each token: the tokens are 256 random bits, so a plain hash
is enough (a slow password hash protects guessable secrets, and these are not). A token is
checked by hashing it and comparing with every stored hash in constant time
(:func:`hmac.compare_digest`), without stopping at the first match.

The daemon's :class:`TokenChecker` re-reads the file when it changes, so ``artdag pinning
token-add`` and ``token-rm`` take effect on a running daemon at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "PinningTokenError",
    "TokenChecker",
    "TokenEntry",
    "add_token",
    "list_tokens",
    "remove_token",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PinningTokenError(ValueError):
    """A bad token name, a duplicate, or an unreadable tokens file."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    sha256: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "created": self.created}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def list_tokens(path: Path) -> list[TokenEntry]:
    """The stored tokens (names and hashes), oldest first; none if the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        data = json.loads(text)
        return [TokenEntry(t["name"], t["sha256"], t["created"]) for t in data["tokens"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise PinningTokenError(f"{path} is not a pinning tokens file: {exc}") from None


def _write(path: Path, entries: list[TokenEntry]) -> None:
    """Atomically, mode 0600 from the first byte (the temporary file is created so)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pinning-tokens.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"tokens": [e.to_json() for e in entries]}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def add_token(path: Path, name: str, *, token: str | None = None) -> str:
    """Create a token called ``name``; returns the token (shown once, never stored). ``token``
    is for tests that must know it before the file exists (at least 32 characters)."""
    if not _NAME.match(name):
        raise PinningTokenError(
            f"token name {name[:70]!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    entries = list_tokens(path)
    if any(e.name == name for e in entries):
        raise PinningTokenError(f"a pinning token named {name!r} exists (token-rm it first)")
    if token is None:
        token = secrets.token_urlsafe(32)
    elif len(token) < 32:
        raise PinningTokenError("a pinning token needs at least 32 characters")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write(path, [*entries, TokenEntry(name, _digest(token), created)])
    return token


def remove_token(path: Path, name: str) -> bool:
    """Revoke the token called ``name``; False if there was none."""
    entries = list_tokens(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    _write(path, kept)
    return True


class TokenChecker:
    """Which token (by name) a bearer token is, re-reading the file when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._entries: list[TokenEntry] = []

    def _load(self) -> list[TokenEntry]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._entries = None, []
            return []
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp != self._stamp:
            self._entries = list_tokens(self.path)
            self._stamp = stamp
        return self._entries

    def owner_of(self, token: str) -> str | None:
        """The name of the token, or None if it is not a valid one."""
        if not token:
            return None
        given = _digest(token).encode()
        found: str | None = None
        for entry in self._load():
            if hmac.compare_digest(given, entry.sha256.encode()):
                found = entry.name
        return found
