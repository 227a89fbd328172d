"""Ownership: claims on works and their disputes, and OpenTimestamps anchors of records.

Claims and anchors are written by the node that answers (the daemon when one runs: it also
gossips the claim and the anchor record at once; else the node in-process, whose repo the daemon
gossips when it next runs). ``calendars`` and ``header_source`` override the ``[anchor]``
section for one call (the CLI's ``--calendar`` and ``--headers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from daemon.core.ownership.anchor_tables import AnchorRow
from daemon.core.ownership.anchors import AnchorService
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services
from dag import cid_to_str, parse_cid
from provenance.claims import ClaimInfo, Dispute

__all__ = [
    "AnchorReport",
    "AnchorRow",
    "AnchorsApi",
    "ClaimResult",
    "ClaimsApi",
    "LocalAnchors",
    "LocalClaims",
    "RemoteAnchors",
    "RemoteClaims",
    "dispute_from_json",
]


def dispute_from_json(value: dict[str, Any]) -> Dispute:
    """A :class:`~provenance.claims.Dispute` back from its ``to_json``."""
    claims = tuple(
        ClaimInfo(c["claim"], c["subject"], c["claimant"], c["created"], c["anchored_at"])
        for c in value["claims"]
    )
    return Dispute(value["subject"], value["reason"], claims, tuple(value["evidence"]))


@dataclass(frozen=True)
class ClaimResult:
    """A signed claim: its record's CID, the split it states (basis points by role) and the
    disputes it is part of."""

    cid: str
    split: dict[str, int]
    disputes: list[Dispute]

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.cid,
            "split": dict(self.split),
            "disputes": [d.to_json() for d in self.disputes],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ClaimResult:
        return cls(
            value["claim"],
            dict(value["split"]),
            [dispute_from_json(d) for d in value["disputes"]],
        )


@dataclass(frozen=True)
class AnchorReport:
    """The check of one record's anchor (:class:`~daemon.core.ownership.anchors.VerifyReport`
    as JSON values: the leaf's path, the proof's steps, the attestation)."""

    cid: str
    record: str
    root: str
    ok: bool
    reason: str
    leaf_path: dict[str, Any] | None
    ots_steps: list[dict[str, Any]]
    attestation: dict[str, Any] | None
    block_height: int | None
    block_time: int | None
    block_hash: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> AnchorReport:
        return cls(**{name: value[name] for name in cls.__dataclass_fields__})


class ClaimsApi(Protocol):
    async def claim(
        self, cid: str, split: Sequence[str] = (), license: str | None = None
    ) -> ClaimResult:
        """Sign a claim on ``cid`` (``split``: ``ROLE=PCT`` items) and index it."""
        ...

    async def disputes(self) -> list[Dispute]:
        """Works with two claimants, on the work itself or on near-duplicates."""
        ...


class AnchorsApi(Protocol):
    async def anchor(
        self,
        cids: Sequence[str] = (),
        calendars: Sequence[str] = (),
        header_source: str | None = None,
    ) -> AnchorRow | None:
        """Stamp ``cids`` (default: every claim and statement not yet anchored) as one batch;
        None when there is nothing to anchor."""
        ...

    async def anchors(
        self,
        upgrade: bool = False,
        calendars: Sequence[str] = (),
        header_source: str | None = None,
    ) -> list[AnchorRow]:
        """Every anchor, oldest first; ``upgrade`` first asks the calendars about pending ones."""
        ...

    async def verify(
        self, cid: str, calendars: Sequence[str] = (), header_source: str | None = None
    ) -> AnchorReport:
        """Check the anchor of ``cid`` end to end, up to the Bitcoin block header."""
        ...


class LocalClaims:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def claim(
        self, cid: str, split: Sequence[str] = (), license: str | None = None
    ) -> ClaimResult:
        claims = await self._services.claims()
        outcome = await claims.claim(cid, split, license)
        return ClaimResult(cid_to_str(outcome.cid), dict(outcome.record["split"]), outcome.disputes)

    async def disputes(self) -> list[Dispute]:
        return await (await self._services.claims()).disputes()


class LocalAnchors:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def _anchors(self, calendars: Sequence[str], header_source: str | None) -> AnchorService:
        return (await self._services.anchors()).using(calendars, header_source)

    async def anchor(
        self,
        cids: Sequence[str] = (),
        calendars: Sequence[str] = (),
        header_source: str | None = None,
    ) -> AnchorRow | None:
        service = await self._anchors(calendars, header_source)
        node = self._services.node
        todo = list(cids)
        if not todo:
            rows: list[dict[str, Any]] = []
            for kind in ("claim", "statement"):
                rows += await trio.to_thread.run_sync(node.index.records_of, kind)
            todo = await trio.to_thread.run_sync(service.unanchored, [r["cid"] for r in rows])
        if not todo:
            return None
        row = await service.anchor(todo)
        await node.announce(parse_cid(row.record))  # followers learn of the anchor
        return row

    async def anchors(
        self,
        upgrade: bool = False,
        calendars: Sequence[str] = (),
        header_source: str | None = None,
    ) -> list[AnchorRow]:
        service = await self._anchors(calendars, header_source)
        if upgrade:
            await service.upgrade_all()
        return await trio.to_thread.run_sync(service.anchors)

    async def verify(
        self, cid: str, calendars: Sequence[str] = (), header_source: str | None = None
    ) -> AnchorReport:
        service = await self._anchors(calendars, header_source)
        return AnchorReport.from_json((await service.verify(cid)).to_json())


class RemoteClaims:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def claim(
        self, cid: str, split: Sequence[str] = (), license: str | None = None
    ) -> ClaimResult:
        body = {"cid": cid, "split": list(split), "license": license}
        return ClaimResult.from_json(await self._caller.call("POST", "/api/v1/claims", json=body))

    async def disputes(self) -> list[Dispute]:
        body = await self._caller.call("GET", "/api/v1/claims/disputes")
        return [dispute_from_json(d) for d in body["disputes"]]


def _sources(calendars: Sequence[str], header_source: str | None) -> dict[str, Any]:
    return {"calendars": list(calendars), "header_source": header_source}


class RemoteAnchors:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def anchor(
        self,
        cids: Sequence[str] = (),
        calendars: Sequence[str] = (),
        header_source: str | None = None,
    ) -> AnchorRow | None:
        body = {"cids": list(cids)} | _sources(calendars, header_source)
        found = (await self._caller.call("POST", "/api/v1/anchors", json=body))["anchor"]
        return None if found is None else AnchorRow.from_json(found)

    async def anchors(
        self,
        upgrade: bool = False,
        calendars: Sequence[str] = (),
        header_source: str | None = None,
    ) -> list[AnchorRow]:
        if upgrade:
            body = _sources(calendars, header_source)
            await self._caller.call("POST", "/api/v1/anchors/upgrade", json=body)
        found = await self._caller.call("GET", "/api/v1/anchors")
        return [AnchorRow.from_json(row) for row in found["anchors"]]

    async def verify(
        self, cid: str, calendars: Sequence[str] = (), header_source: str | None = None
    ) -> AnchorReport:
        body = {"cid": cid} | _sources(calendars, header_source)
        found = await self._caller.call("POST", "/api/v1/anchors/verify", json=body)
        return AnchorReport.from_json(found)
