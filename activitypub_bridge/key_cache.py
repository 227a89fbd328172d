"""Remote actors' public keys, cached, and verification that follows key rotation.

:class:`KeyCache` is plain data (key id -> PEM and when it was fetched); the caller does the
fetching. :func:`verify_with_refetch` verifies a request with the cached key and, when the
signature fails with a cached key, fetches the key once more (the sender may have rotated it)
before giving up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from .http_signatures import (
    DEFAULT_WINDOW_S,
    KeyLookup,
    RejectReason,
    SignatureRejected,
    SignedRequest,
    VerifiedSignature,
    signature_key_id,
    verify_request,
)
from .keys import ActorKeyError, load_public_key_pem

__all__ = ["CachedKey", "KeyCache", "verify_with_refetch"]


@dataclass(frozen=True)
class CachedKey:
    pem: str
    fetched_at: float
    key: PublicKeyTypes
    refetched_at: float | None = None  # when a failed signature last made us fetch it again


class KeyCache:
    """Fetched remote keys, ``key_id -> (pem, fetched_at)``; pure data, no I/O.

    An entry older than ``max_age`` counts as absent (fetched again before use). After a failed
    signature a key is re-fetched at most once per ``refetch_cooldown`` seconds, so a stream of
    bad signatures cannot make us hammer the remote server (the first fetch does not count: a
    key rotated right after we first saw it is still followed).
    """

    def __init__(self, *, max_age: float = 86400.0, refetch_cooldown: float = 60.0) -> None:
        self.max_age = max_age
        self.refetch_cooldown = refetch_cooldown
        self._entries: dict[str, CachedKey] = {}

    def get(self, key_id: str, now: float | None = None) -> CachedKey | None:
        entry = self._entries.get(key_id)
        now = time.time() if now is None else now
        if entry is None or now - entry.fetched_at > self.max_age:
            return None
        return entry

    def put(
        self, key_id: str, pem: str | bytes, now: float | None = None, *, refetch: bool = False
    ) -> CachedKey:
        """Store a fetched PEM (``refetch``: fetched again after a failed signature);
        :class:`SignatureRejected` (unknown key) if it is not a key."""
        try:
            key = load_public_key_pem(pem)
        except ActorKeyError as exc:
            raise SignatureRejected(RejectReason.UNKNOWN_KEY, f"{key_id!r}: {exc}") from None
        text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
        at = time.time() if now is None else now
        previous = self._entries.get(key_id)
        last_refetch = at if refetch else (previous.refetched_at if previous else None)
        entry = CachedKey(text, at, key, last_refetch)
        self._entries[key_id] = entry
        return entry

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    def may_refetch(self, key_id: str, now: float | None = None) -> bool:
        entry = self._entries.get(key_id)
        now = time.time() if now is None else now
        return (
            entry is None
            or entry.refetched_at is None
            or now - entry.refetched_at >= self.refetch_cooldown
        )

    def lookup(self, now: float | None = None) -> KeyLookup:
        """A ``key_lookup`` for the verifiers, reading this cache as of ``now``."""

        def find(key_id: str) -> PublicKeyTypes | None:
            entry = self.get(key_id, now)
            return None if entry is None else entry.key

        return find

    def entries(self) -> dict[str, CachedKey]:
        return dict(self._entries)


async def verify_with_refetch(
    request: SignedRequest,
    cache: KeyCache,
    fetch_key: Callable[[str], Awaitable[str | bytes | None]],
    *,
    now: float | None = None,
    window: float = DEFAULT_WINDOW_S,
) -> VerifiedSignature:
    """Verify ``request`` with the cached key, fetching it if absent; on a bad signature with a
    cached key, re-fetch it ONCE (the sender may have rotated it) and retry.

    ``fetch_key(key_id)`` is the caller's I/O (a signed GET of the key/actor document, returning
    ``publicKeyPem`` or ``None``). Digest, date and coverage failures never trigger a fetch, and
    a key fetched less than ``cache.refetch_cooldown`` ago is not fetched again.
    """
    now = time.time() if now is None else now
    key_id = signature_key_id(request.headers)

    def attempt() -> VerifiedSignature:
        return verify_request(
            request.method,
            request.url,
            request.headers,
            request.body,
            cache.lookup(now),
            now=now,
            window=window,
        )

    fresh = False
    if cache.get(key_id, now) is None:
        pem = await fetch_key(key_id)
        if pem is None:
            raise SignatureRejected(RejectReason.UNKNOWN_KEY, f"cannot fetch key {key_id!r}")
        cache.put(key_id, pem, now)
        fresh = True
    try:
        return attempt()
    except SignatureRejected as exc:
        if fresh or exc.reason is not RejectReason.BAD_SIGNATURE:
            raise
        if not cache.may_refetch(key_id, now):
            raise
    pem = await fetch_key(key_id)
    if pem is None:
        cache.forget(key_id)
        raise SignatureRejected(RejectReason.UNKNOWN_KEY, f"key {key_id!r} is gone")
    cache.put(key_id, pem, now, refetch=True)
    return attempt()
