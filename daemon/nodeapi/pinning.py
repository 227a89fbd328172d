"""The Pinning Service API's administration: access tokens and every token's pin requests.

``artdag pinning token-add|token-ls|token-rm|ls`` go through :class:`PinningApi`; in-process
it works on the home's token file and the worker's requests (:mod:`daemon.services`),
remotely on the daemon's routes under ``/api/v1/pinning`` (behind the API token, like all of
``/api/v1``; the public ``/pins`` routes of the spec are :mod:`daemon.http.pinning`). A new
token is returned once, by ``token_add``; nothing lists a token itself, only names and times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import trio

from daemon.core.pinning_api.requests import STATUSES, ListQuery, PinRequest, PinRequestError
from daemon.core.pinning_api.tokens import add_token, list_tokens, remove_token
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services

__all__ = [
    "MAX_LIST",
    "LocalPinning",
    "NewToken",
    "PinningApi",
    "RemotePinning",
    "RequestListing",
    "TokenInfo",
    "check_listing",
]

MAX_LIST = 1_000_000


@dataclass(frozen=True)
class NewToken:
    name: str
    token: str  # shown once; only its hash is stored

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "token": self.token}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> NewToken:
        return cls(value["name"], value["token"])


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> TokenInfo:
        return cls(value["name"], value["created"])


@dataclass(frozen=True)
class RequestListing:
    """Pin requests of every token, newest first: each the spec's ``PinStatus`` without
    ``delegates``, with its ``owner`` (the token's name); ``count`` of all that match."""

    count: int
    results: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "results": list(self.results)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RequestListing:
        return cls(value["count"], list(value["results"]))


def listed(request: PinRequest) -> dict[str, Any]:
    item = request.to_json([]) | {"owner": request.owner}
    del item["delegates"]
    return item


def check_listing(statuses: Sequence[str], limit: int) -> None:
    if not 1 <= limit <= MAX_LIST:
        raise PinRequestError(f"--limit must be from 1 to {MAX_LIST}")
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise PinRequestError(f"unknown status {unknown[0]!r} (one of {', '.join(STATUSES)})")


class PinningApi(Protocol):
    async def token_add(self, name: str) -> NewToken:
        """Make the access token ``name`` (PinningTokenError for a bad name or a duplicate)."""
        ...

    async def token_list(self) -> list[TokenInfo]:
        """The tokens' names and creation times, oldest first."""
        ...

    async def token_remove(self, name: str) -> bool:
        """Revoke the token ``name`` (its requests stay); False if there is none."""
        ...

    async def requests(self, statuses: Sequence[str] = (), limit: int = 1000) -> RequestListing:
        """Every token's requests with one of ``statuses`` (all if empty), newest first."""
        ...


class LocalPinning:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._tokens_path = services.config.pinning_tokens_path

    async def token_add(self, name: str) -> NewToken:
        token = await trio.to_thread.run_sync(add_token, self._tokens_path, name)
        return NewToken(name, token)

    async def token_list(self) -> list[TokenInfo]:
        entries = await trio.to_thread.run_sync(list_tokens, self._tokens_path)
        return [TokenInfo(e.name, e.created) for e in entries]

    async def token_remove(self, name: str) -> bool:
        return await trio.to_thread.run_sync(remove_token, self._tokens_path, name)

    async def requests(self, statuses: Sequence[str] = (), limit: int = 1000) -> RequestListing:
        check_listing(statuses, limit)
        if not self._services.config.pinning_db_path.exists():
            return RequestListing(0, [])  # no request was ever made: do not create the file
        worker = await self._services.pinning()
        query = ListQuery(statuses=tuple(statuses) or STATUSES, limit=limit)
        count, rows = await worker.list(query)
        return RequestListing(count, [listed(r) for r in rows])


class RemotePinning:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def token_add(self, name: str) -> NewToken:
        body = await self._caller.call("POST", "/api/v1/pinning/tokens", json={"name": name})
        return NewToken.from_json(body)

    async def token_list(self) -> list[TokenInfo]:
        body = await self._caller.call("GET", "/api/v1/pinning/tokens")
        return [TokenInfo.from_json(item) for item in body["tokens"]]

    async def token_remove(self, name: str) -> bool:
        path = f"/api/v1/pinning/tokens/{quote(name, safe='')}"
        body = await self._caller.call("DELETE", path)
        return bool(body["removed"])

    async def requests(self, statuses: Sequence[str] = (), limit: int = 1000) -> RequestListing:
        params: list[tuple[str, str | int]] = [("status", s) for s in statuses]
        params.append(("limit", limit))
        body = await self._caller.call("GET", "/api/v1/pinning/requests", params=params)
        return RequestListing.from_json(body)
