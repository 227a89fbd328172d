"""Remote actors and their keys, as the inbox needs them: fetched by signed GETs through the
bridge's SSRF-guarded client, cached (documents for an hour, keys in a :class:`KeyCache`), and
each key's owner remembered (it must be on the key's own origin)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from activitypub_bridge import BridgeClient, FetchError, FetchRefused, KeyCache, Signer

__all__ = ["RemoteActors"]

log = logging.getLogger("artdag.activitypub")

_ACTOR_TTL = 3600.0


def _public_key_of(document: Mapping[str, Any], key_id: str) -> tuple[str, str] | None:
    """``(pem, owner)`` for ``key_id`` in an actor (or key) document, or None."""
    keys = document.get("publicKey")
    candidates = keys if isinstance(keys, list) else [keys]
    for key in candidates:
        if isinstance(key, Mapping) and key.get("id") == key_id:
            pem, owner = key.get("publicKeyPem"), key.get("owner") or document.get("id")
            if isinstance(pem, str) and isinstance(owner, str):
                return pem, owner
    if document.get("id") == key_id and isinstance(document.get("publicKeyPem"), str):
        owner = document.get("owner")
        if isinstance(owner, str):
            return str(document["publicKeyPem"]), owner
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


class RemoteActors:
    """Actor documents and public keys of other servers, fetched as ``signer``."""

    def __init__(self, client: BridgeClient, signer: Signer) -> None:
        self.client = client
        self.signer = signer
        self.keys = KeyCache()
        self._key_owners: dict[str, str] = {}
        self._actors: dict[str, tuple[float, dict[str, Any]]] = {}

    async def fetch_actor(self, actor_id: str, *, fresh: bool = False) -> dict[str, Any]:
        """The remote actor document (signed GET, SSRF-guarded, cached for an hour)."""
        cached = self._actors.get(actor_id)
        if cached is not None and not fresh and time.time() - cached[0] < _ACTOR_TTL:
            return cached[1]
        document = await self.client.fetch_json(actor_id, self.signer)
        if document.get("id") != actor_id.split("#", 1)[0]:
            raise FetchError(f"{actor_id}: the document's id is {str(document.get('id'))[:200]}")
        self._actors[actor_id] = (time.time(), document)
        return document

    def forget(self, actor_id: str) -> None:
        """Drop a cached actor document (the actor was deleted)."""
        self._actors.pop(actor_id, None)

    def owner_of(self, key_id: str) -> str | None:
        """The actor owning ``key_id``, learnt when the key was fetched."""
        return self._key_owners.get(key_id)

    async def fetch_key(self, key_id: str) -> str | None:
        """The PEM of ``key_id``; remembers its owner (must be on the key's origin)."""
        try:
            document = await self.client.fetch_json(key_id, self.signer)
            found = _public_key_of(document, key_id)
            if found is None and isinstance(document.get("owner"), str):
                document = await self.client.fetch_json(document["owner"], self.signer)
                found = _public_key_of(document, key_id)
        except (FetchError, FetchRefused) as exc:
            log.info("cannot fetch key %s: %s", key_id, exc)
            return None
        if found is None:
            log.info("no key %s in the document fetched for it", key_id)
            return None
        pem, owner = found
        if _origin(owner) != _origin(key_id):
            log.warning("key %s claims owner %s on another origin", key_id, owner)
            return None
        if document.get("id") == owner:
            self._actors[owner] = (time.time(), document)
        self._key_owners[key_id] = owner
        return pem
