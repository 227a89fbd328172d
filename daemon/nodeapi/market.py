"""The render market's ledger: jobs this node requested or volunteered for, and volunteers.

The ledger is the market's SQLite tables (:class:`daemon.core.market.store.MarketStore`, opened
by :meth:`daemon.services.Services.market_store`), so :class:`LocalMarket` answers without the
daemon; :class:`RemoteMarket` asks the daemon (``/api/v1/jobs``, ``/api/v1/jobs/<id>``,
``/api/v1/volunteers``). A node with P2P off runs no market: both sides then refuse with
:class:`~daemon.core.market.context.MarketNotRunning`'s message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import trio

from daemon.core.market.context import MarketNotRunning
from daemon.core.market.store import (
    JOB_ROLES,
    JobRow,
    MarketStore,
    ResultRow,
    VerdictRow,
    VolunteerRow,
)
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services

__all__ = [
    "MAX_JOBS_LISTED",
    "JobDetail",
    "LocalMarket",
    "MarketApi",
    "NoSuchJob",
    "RemoteMarket",
    "Volunteers",
]

MAX_JOBS_LISTED = 1000


class NoSuchJob(LookupError):
    """No job of that id in this node's ledger."""


@dataclass(frozen=True)
class JobDetail:
    job_id: str
    jobs: list[JobRow]  # one per role this node played
    results: list[ResultRow]
    verdict: VerdictRow | None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "jobs": [j.to_json() for j in self.jobs],
            "results": [r.to_json() for r in self.results],
            "verdict": self.verdict.to_json() if self.verdict else None,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobDetail:
        verdict = body.get("verdict")
        return cls(
            body["job_id"],
            [JobRow.from_json(j) for j in body["jobs"]],
            [ResultRow.from_json(r) for r in body["results"]],
            VerdictRow.from_json(verdict) if verdict else None,
        )


@dataclass(frozen=True)
class Volunteers:
    """The volunteers, best first; ``trust_after``: accepted results (and no rejected one)
    after which a volunteer counts as trusted (the requester's ``[market]`` setting)."""

    rows: list[VolunteerRow]
    trust_after: int

    def to_json(self) -> dict[str, Any]:
        return {
            "volunteers": [r.to_json(self.trust_after) for r in self.rows],
            "trust_after": self.trust_after,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Volunteers:
        return cls([VolunteerRow.from_json(r) for r in body["volunteers"]], body["trust_after"])


def check_jobs_query(role: str | None, limit: int) -> None:
    """ValueError for a role or limit ``jobs`` refuses (the same words on both sides)."""
    if role is not None and role not in JOB_ROLES:
        raise ValueError(f"role must be requester or volunteer, not {role!r}")
    if not 1 <= limit <= MAX_JOBS_LISTED:
        raise ValueError(f"limit must be between 1 and {MAX_JOBS_LISTED}")


class MarketApi(Protocol):
    async def jobs(self, role: str | None = None, limit: int = 200) -> list[JobRow]:
        """Jobs this node requested or volunteered for, newest first."""
        ...

    async def job(self, job_id: str) -> JobDetail:
        """One job: its rows, the results received and the accepted output (NoSuchJob)."""
        ...

    async def volunteers(self) -> Volunteers:
        """The volunteers this node has dealt with: credit and reputation, best first."""
        ...


class LocalMarket:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def _store(self) -> MarketStore:
        if not self._services.config.p2p.enabled:
            raise MarketNotRunning("the market is not running on this node")
        return await self._services.market_store()

    async def jobs(self, role: str | None = None, limit: int = 200) -> list[JobRow]:
        check_jobs_query(role, limit)
        store = await self._store()
        return await trio.to_thread.run_sync(store.jobs, role, limit)

    async def job(self, job_id: str) -> JobDetail:
        store = await self._store()

        def read() -> JobDetail | None:
            jobs = store.jobs_by_id(job_id)
            if not jobs:
                return None
            return JobDetail(job_id, jobs, store.results(job_id), store.verdict(jobs[0].cache_id))

        detail = await trio.to_thread.run_sync(read)
        if detail is None:
            raise NoSuchJob(f"no job {job_id}")
        return detail

    async def volunteers(self) -> Volunteers:
        store = await self._store()
        rows = await trio.to_thread.run_sync(store.volunteers)
        return Volunteers(rows, self._services.config.market.trust_after)


class RemoteMarket:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def jobs(self, role: str | None = None, limit: int = 200) -> list[JobRow]:
        params: dict[str, Any] = {"limit": limit} | ({"role": role} if role else {})
        body = await self._caller.call("GET", "/api/v1/jobs", params=params)
        return [JobRow.from_json(row) for row in body["jobs"]]

    async def job(self, job_id: str) -> JobDetail:
        body = await self._caller.call("GET", f"/api/v1/jobs/{quote(job_id, safe='')}")
        return JobDetail.from_json(body)

    async def volunteers(self) -> Volunteers:
        return Volunteers.from_json(await self._caller.call("GET", "/api/v1/volunteers"))
