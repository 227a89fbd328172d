"""The fediverse bridge: publishing a work, the delivery queue, followers and domain blocks.

Publishing stores the ``Create`` and queues it for every follower's inbox; the daemon's
delivery worker sends it (at once when the daemon answers, else when it next starts). Blocks
are stored in the bridge's database, which the daemon re-reads within a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from daemon.core.fediverse import Published, PublishError
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services

__all__ = [
    "Deliveries",
    "FediverseApi",
    "FollowersView",
    "LocalFediverse",
    "Published",
    "RemoteFediverse",
]


def published_from_json(value: dict[str, Any]) -> Published:
    return Published(value["activity"], value["note"], value["queued"], value["already_published"])


@dataclass(frozen=True)
class Deliveries:
    """The delivery queue: counts by state (and the next retry), then the latest rows."""

    stats: dict[str, Any]
    deliveries: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"stats": self.stats, "deliveries": self.deliveries}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Deliveries:
        return cls(dict(value["stats"]), list(value["deliveries"]))


@dataclass(frozen=True)
class FollowersView:
    """Who follows the node's creator, and the blocked domains (stored and configured)."""

    handle: str
    actor: str
    count: int
    followers: list[dict[str, Any]]  # actor, inbox, shared_inbox, since
    blocked_domains: list[str]
    config_blocked_domains: list[str]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> FollowersView:
        return cls(**{name: value[name] for name in cls.__dataclass_fields__})


class FediverseApi(Protocol):
    async def publish(self, cid: str, text: str = "", alt: str | None = None) -> Published:
        """Post asset ``cid`` as a Note with its media to every follower."""
        ...

    async def deliveries(self, state: str | None = None, limit: int = 100) -> Deliveries:
        """The queue's counts and its latest ``limit`` rows (in ``state`` only, if given)."""
        ...

    async def followers(self, limit: int = 1000) -> FollowersView: ...

    async def block(self, domain: str) -> str:
        """Block a domain and its subdomains; the normalised name."""
        ...

    async def unblock(self, domain: str) -> bool:
        """Lift a stored block; False if there was none."""
        ...


class LocalFediverse:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def publish(self, cid: str, text: str = "", alt: str | None = None) -> Published:
        if not self._services.config.activitypub.enabled:
            raise PublishError("the fediverse bridge is off ([activitypub] enabled = false)")
        return await (await self._services.activitypub()).publish(cid, text, alt)

    async def deliveries(self, state: str | None = None, limit: int = 100) -> Deliveries:
        found = await (await self._services.activitypub()).deliveries(state, limit)
        return Deliveries.from_json(found)

    async def followers(self, limit: int = 1000) -> FollowersView:
        found = await (await self._services.activitypub()).followers_view(limit)
        return FollowersView.from_json(found)

    async def block(self, domain: str) -> str:
        return await (await self._services.activitypub()).block(domain)

    async def unblock(self, domain: str) -> bool:
        return await (await self._services.activitypub()).unblock(domain)


class RemoteFediverse:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def publish(self, cid: str, text: str = "", alt: str | None = None) -> Published:
        body = {"cid": cid, "text": text} | ({"alt": alt} if alt is not None else {})
        found = await self._caller.call("POST", "/api/v1/activitypub/publish", json=body)
        return published_from_json(found)

    async def deliveries(self, state: str | None = None, limit: int = 100) -> Deliveries:
        params: dict[str, str | int] = {"limit": limit} | ({"state": state} if state else {})
        found = await self._caller.call("GET", "/api/v1/activitypub/deliveries", params=params)
        return Deliveries.from_json(found)

    async def followers(self, limit: int = 1000) -> FollowersView:
        found = await self._caller.call(
            "GET", "/api/v1/activitypub/followers", params={"limit": limit}
        )
        return FollowersView.from_json(found)

    async def block(self, domain: str) -> str:
        body = {"domain": domain}
        found = await self._caller.call("POST", "/api/v1/activitypub/blocks", json=body)
        return str(found["blocked"])

    async def unblock(self, domain: str) -> bool:
        body = {"domain": domain, "unblock": True}
        found = await self._caller.call("POST", "/api/v1/activitypub/blocks", json=body)
        return bool(found["unblocked"])
