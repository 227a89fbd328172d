"""Pins: pins with reasons, the pinning policies and quota, garbage collection.

``artdag pin add|rm|ls|policy`` and ``artdag gc`` go through :class:`PinsApi`; in-process it
calls the node's :class:`~daemon.core.pins.service.PinService`, remotely the routes of
:mod:`daemon.http.pins`. Both return the dataclasses below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from daemon.core.pins.service import PinError, PinService, PinView, RoundReport
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services
from dag import PIN_REASONS
from dag.gc import GcReport

__all__ = [
    "LocalPins",
    "PinsApi",
    "PolicyInfo",
    "RemotePins",
    "Unpinned",
    "check_reason",
]


@dataclass(frozen=True)
class Unpinned:
    """The reasons ``rm`` dropped from ``cid``."""

    cid: str
    removed: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"cid": self.cid, "removed": list(self.removed)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Unpinned:
        return cls(value["cid"], list(value["removed"]))


@dataclass(frozen=True)
class PolicyInfo:
    """The policy settings, the store's usage, the last round and collection, the most popular
    works (at least ten, or ``popular_count``)."""

    follow_creators: list[str]
    popular_count: int
    quota_bytes: int
    usage: dict[str, int]  # blocks, bytes
    last_round: dict[str, Any] | None
    last_gc: dict[str, Any] | None
    popular: list[dict[str, Any]]  # cid, score, events

    def to_json(self) -> dict[str, Any]:
        return {
            "follow_creators": list(self.follow_creators),
            "popular_count": self.popular_count,
            "quota_bytes": self.quota_bytes,
            "usage": dict(self.usage),
            "last_round": self.last_round,
            "last_gc": self.last_gc,
            "popular": list(self.popular),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> PolicyInfo:
        return cls(**value)


def check_reason(reason: str | None) -> None:
    if reason is not None and reason not in PIN_REASONS:
        raise PinError(f"unknown reason {reason!r} (one of {', '.join(PIN_REASONS)})")


class PinsApi(Protocol):
    async def add(self, cid: str, *, recursive: bool = True) -> PinView:
        """Pin ``cid`` for the operator (``explicit``), fetching what the store lacks."""
        ...

    async def remove(self, cid: str, *, every_reason: bool = False) -> Unpinned:
        """Drop the operator's reasons (or every reason) from ``cid``."""
        ...

    async def list(self, reason: str | None = None) -> list[PinView]:
        """Every pin (with ``reason`` only those), assets first."""
        ...

    async def policy(self) -> PolicyInfo:
        """The pinning policies' settings and state."""
        ...

    async def policy_round(self) -> RoundReport:
        """Apply the policies once, now."""
        ...

    async def collect(self, grace_s: float | None = None) -> GcReport:
        """Collect garbage now (``grace_s`` None: ``[pinning] gc_grace_seconds``)."""
        ...


class LocalPins:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def _pins(self) -> PinService:
        return await self._services.pins()

    async def add(self, cid: str, *, recursive: bool = True) -> PinView:
        return await (await self._pins()).add(cid, recursive=recursive)

    async def remove(self, cid: str, *, every_reason: bool = False) -> Unpinned:
        removed = await (await self._pins()).remove(cid, every_reason=every_reason)
        return Unpinned(cid, list(removed))

    async def list(self, reason: str | None = None) -> list[PinView]:
        check_reason(reason)
        return await (await self._pins()).views(reason)

    async def policy(self) -> PolicyInfo:
        pins = await self._pins()
        settings = pins.settings
        usage = await pins.store.usage()
        return PolicyInfo(
            follow_creators=list(settings.follow_creators),
            popular_count=settings.popular_count,
            quota_bytes=settings.quota_bytes,
            usage={"blocks": usage.blocks, "bytes": usage.bytes},
            last_round=pins.last_round.to_json() if pins.last_round else None,
            last_gc=pins.last_gc,
            popular=await pins.top(max(settings.popular_count, 10)),
        )

    async def policy_round(self) -> RoundReport:
        return await (await self._pins()).policy_round()

    async def collect(self, grace_s: float | None = None) -> GcReport:
        return await (await self._pins()).collect(grace_s)


class RemotePins:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def add(self, cid: str, *, recursive: bool = True) -> PinView:
        body = {"cid": cid, "recursive": recursive}
        return PinView.from_json(await self._caller.call("POST", "/api/v1/pins", json=body))

    async def remove(self, cid: str, *, every_reason: bool = False) -> Unpinned:
        params = {"all": "1"} if every_reason else {}
        path = f"/api/v1/pins/{quote(cid, safe='')}"
        return Unpinned.from_json(await self._caller.call("DELETE", path, params=params))

    async def list(self, reason: str | None = None) -> list[PinView]:
        params = {"reason": reason} if reason is not None else {}
        body = await self._caller.call("GET", "/api/v1/pins", params=params)
        return [PinView.from_json(item) for item in body["pins"]]

    async def policy(self) -> PolicyInfo:
        return PolicyInfo.from_json(await self._caller.call("GET", "/api/v1/pins/policy"))

    async def policy_round(self) -> RoundReport:
        return RoundReport.from_json(await self._caller.call("POST", "/api/v1/pins/policy"))

    async def collect(self, grace_s: float | None = None) -> GcReport:
        body = await self._caller.call("POST", "/api/v1/gc", json={"grace_seconds": grace_s})
        return GcReport(**body)
