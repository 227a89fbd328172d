"""What this node remembers of the render market, in SQLite (via sqlite-utils).

Four tables: ``market_jobs`` (step jobs this node asked for, as *requester*, or saw as a
*volunteer*; one row per job and role), ``market_results`` (receipts received for a job, one per
volunteer and slot, with the quorum's verdict), ``market_volunteers`` (each volunteer's credit:
rendered milliseconds and accepted / rejected / expired results) and ``market_verdicts`` (the
network-wide step cache: the accepted output a requester announced for a step cache id).

The signed receipts in the blockstore are the truth; these rows are the ledger the CLI and the
API list from and the market service decides with. Like :class:`renderer.step_cache.StepCache`
every method is synchronous and serialised by one lock; trio callers use
``trio.to_thread.run_sync``. Credit increments are one ``INSERT ... ON CONFLICT DO UPDATE``
statement so concurrent increments never lose a count.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dag.sqlite_db import open_sqlite_utils
from renderer.market.reputation import Credit, is_avoided, is_trusted, reputation

__all__ = [
    "JOB_ROLES",
    "REQUESTER_STATUSES",
    "RESULT_VERDICTS",
    "VOLUNTEER_STATUSES",
    "JobRow",
    "MarketStore",
    "MarketStoreError",
    "ResultRow",
    "VerdictRow",
    "VolunteerRow",
]

REQUESTER_STATUSES = frozenset({"open", "leased", "verifying", "done", "failed", "reused"})
VOLUNTEER_STATUSES = frozenset(
    {"seen", "declined", "offered", "leased", "rendering", "done", "released", "aborted", "lost"}
)
JOB_ROLES: dict[str, frozenset[str]] = {
    "requester": REQUESTER_STATUSES,
    "volunteer": VOLUNTEER_STATUSES,
}
RESULT_VERDICTS = frozenset({"pending", "accepted", "rejected"})


class MarketStoreError(ValueError):
    """A row the market store refuses (unknown role, status, field or job); nothing is written."""


@dataclass
class JobRow:
    job_id: str
    role: str  # requester (jobs this node asked for) | volunteer (jobs it saw as a volunteer)
    step: str
    operation: str
    cache_id: str
    requester: str  # the requester's did
    replicas: int
    status: str  # see REQUESTER_STATUSES / VOLUNTEER_STATUSES
    created: float  # unix seconds
    updated: float
    deadline: float
    output: str | None = None
    content_key: str | None = None
    volunteers: list[str] = field(default_factory=list)  # dids that held a lease
    detail: str = ""  # last reason or error, one line
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    render_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobRow:
        return cls(**body)


@dataclass
class ResultRow:
    job_id: str
    volunteer: str
    slot: int
    receipt: str
    output: str
    content_key: str
    duration_ms: int | None
    render_ms: int
    verdict: str  # pending | accepted | rejected
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ResultRow:
        return cls(**body)


@dataclass
class VolunteerRow:
    did: str
    rendered_ms: int = 0
    accepted: int = 0
    rejected: int = 0
    expired: int = 0
    leases: int = 0
    last_seen: float = 0.0

    @property
    def credit(self) -> Credit:
        return Credit(self.accepted, self.rejected, self.expired, self.rendered_ms)

    @property
    def reputation(self) -> float:
        return reputation(self.credit)

    def trusted(self, trust_after: int) -> bool:
        return is_trusted(self.credit, trust_after)

    @property
    def avoided(self) -> bool:
        return is_avoided(self.credit)

    def to_json(self, trust_after: int | None = None) -> dict[str, Any]:
        """The counts plus ``reputation`` and ``avoided``; ``trusted`` when ``trust_after`` is
        given (it is the requester's policy, not a property of the volunteer)."""
        out = asdict(self) | {"reputation": self.reputation, "avoided": self.avoided}
        if trust_after is not None:
            out["trusted"] = self.trusted(trust_after)
        return out

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> VolunteerRow:
        """The counts of :meth:`to_json` (what it derives from them is derived again)."""
        return cls(**{f.name: body[f.name] for f in fields(cls)})


@dataclass
class VerdictRow:
    """A requester announced ``output`` as the accepted result of step ``cache_id``."""

    cache_id: str
    output: str
    content_key: str
    kind: str  # media | beats
    duration_ms: int | None
    receipts: list[str]
    requester: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> VerdictRow:
        return cls(**body)


_JOB_FIELDS = {f.name for f in fields(JobRow)}
_JOB_UPDATABLE = _JOB_FIELDS - {"job_id", "role"}
_JOB_JSON = ("volunteers", "timings")
_COUNTERS = ("rendered_ms", "accepted", "rejected", "expired", "leases")


def _check_job(role: str, status: str | None = None) -> None:
    if role not in JOB_ROLES:
        raise MarketStoreError(f"unknown job role {role!r} (requester or volunteer)")
    if status is not None and status not in JOB_ROLES[role]:
        allowed = ", ".join(sorted(JOB_ROLES[role]))
        raise MarketStoreError(f"unknown {role} job status {status!r} ({allowed})")


def _job_from_db(row: dict[str, Any]) -> JobRow:
    return JobRow(**(row | {k: json.loads(row[k]) for k in _JOB_JSON}))


def _job_to_db(row: JobRow) -> dict[str, Any]:
    return asdict(row) | {k: json.dumps(getattr(row, k)) for k in _JOB_JSON}


class MarketStore:
    def __init__(self, path: Path | str) -> None:
        self.db = open_sqlite_utils(path)
        self._lock = threading.Lock()
        with self._lock, self.db.conn:
            self._create_tables()

    def _create_tables(self) -> None:
        self.db.table("market_jobs").create(
            {
                "job_id": str,
                "role": str,
                "step": str,
                "operation": str,
                "cache_id": str,
                "requester": str,
                "replicas": int,
                "status": str,
                "created": float,
                "updated": float,
                "deadline": float,
                "output": str,
                "content_key": str,
                "volunteers": str,
                "detail": str,
                "timings": str,
                "render_ms": int,
            },
            pk=("job_id", "role"),
            not_null={"step", "operation", "cache_id", "status", "volunteers", "timings"},
            if_not_exists=True,
        )
        self.db.table("market_jobs").create_index(["role", "created"], if_not_exists=True)
        self.db.table("market_results").create(
            {
                "job_id": str,
                "volunteer": str,
                "slot": int,
                "receipt": str,
                "output": str,
                "content_key": str,
                "duration_ms": int,
                "render_ms": int,
                "verdict": str,
                "at": float,
            },
            pk=("job_id", "volunteer", "slot"),
            if_not_exists=True,
        )
        self.db.table("market_volunteers").create(
            {
                "did": str,
                "rendered_ms": int,
                "accepted": int,
                "rejected": int,
                "expired": int,
                "leases": int,
                "last_seen": float,
            },
            pk="did",
            not_null=set(_COUNTERS),
            defaults=dict.fromkeys(_COUNTERS, 0),
            if_not_exists=True,
        )
        self.db.table("market_verdicts").create(
            {
                "cache_id": str,
                "output": str,
                "content_key": str,
                "kind": str,
                "duration_ms": int,
                "receipts": str,
                "requester": str,
                "at": float,
            },
            pk="cache_id",
            if_not_exists=True,
        )

    # -- jobs ---------------------------------------------------------------------------------

    def put_job(self, row: JobRow) -> None:
        """Insert or replace the job row (keyed by job id and role)."""
        _check_job(row.role, row.status)
        with self._lock, self.db.conn:
            self.db.table("market_jobs").upsert(_job_to_db(row), pk=("job_id", "role"))

    def update_job(self, job_id: str, role: str, /, **changes: Any) -> None:
        """Set some fields of a stored job (and ``updated`` to now, unless given)."""
        _check_job(role, changes.get("status"))
        unknown = sorted(set(changes) - _JOB_UPDATABLE)
        if unknown:
            raise MarketStoreError(f"unknown job field(s): {', '.join(unknown)}")
        values = {"updated": time.time()} | changes
        values |= {k: json.dumps(values[k]) for k in _JOB_JSON if k in values}
        with self._lock, self.db.conn:
            self._require_job(job_id, role)
            self.db.table("market_jobs").update((job_id, role), values)

    def add_job_volunteer(self, job_id: str, role: str, did: str) -> list[str]:
        """Append ``did`` to the job's volunteers (once) atomically; returns the new list."""
        with self._lock, self.db.conn:
            job = self._require_job(job_id, role)
            if did not in job.volunteers:
                job.volunteers.append(did)
            values = {"volunteers": json.dumps(job.volunteers), "updated": time.time()}
            self.db.table("market_jobs").update((job_id, role), values)
        return job.volunteers

    def add_job_timing(self, job_id: str, role: str, phase: str, seconds: float) -> None:
        """Add ``seconds`` to one phase of the job's timings atomically (phases may repeat,
        e.g. a second lease after the first volunteer went silent)."""
        with self._lock, self.db.conn:
            job = self._require_job(job_id, role)
            job.timings[phase] = job.timings.get(phase, 0.0) + seconds
            values = {"timings": json.dumps(job.timings), "updated": time.time()}
            self.db.table("market_jobs").update((job_id, role), values)

    def _require_job(self, job_id: str, role: str) -> JobRow:
        rows = list(
            self.db.table("market_jobs").rows_where("job_id = ? and role = ?", [job_id, role])
        )
        if not rows:
            raise MarketStoreError(f"no {role} job {job_id}")
        return _job_from_db(rows[0])

    def job(self, job_id: str, role: str) -> JobRow | None:
        with self._lock:
            rows = list(
                self.db.table("market_jobs").rows_where("job_id = ? and role = ?", [job_id, role])
            )
        return _job_from_db(rows[0]) if rows else None

    def jobs_by_id(self, job_id: str) -> list[JobRow]:
        """The rows of one job id in both roles (a node may request and volunteer the same)."""
        with self._lock:
            rows = list(
                self.db.table("market_jobs").rows_where("job_id = ?", [job_id], order_by="role")
            )
        return [_job_from_db(r) for r in rows]

    def jobs(self, role: str | None = None, limit: int = 200) -> list[JobRow]:
        """Newest first (by creation time)."""
        if role is not None:
            _check_job(role)
        where, args = ("role = ?", [role]) if role else (None, [])
        with self._lock:
            rows = list(
                self.db.table("market_jobs").rows_where(
                    where, args, order_by="created desc, job_id, role", limit=limit
                )
            )
        return [_job_from_db(r) for r in rows]

    # -- results ------------------------------------------------------------------------------

    def put_result(self, row: ResultRow) -> None:
        """Insert or replace a result (keyed by job id, volunteer and slot)."""
        _check_verdict(row.verdict)
        with self._lock, self.db.conn:
            self.db.table("market_results").upsert(asdict(row), pk=("job_id", "volunteer", "slot"))

    def set_verdict(self, job_id: str, volunteer: str, slot: int, verdict: str) -> None:
        _check_verdict(verdict)
        with self._lock, self.db.conn:
            cursor = self.db.execute(
                "update market_results set verdict = ? "
                "where job_id = ? and volunteer = ? and slot = ?",
                [verdict, job_id, volunteer, slot],
            )
            if cursor.rowcount == 0:
                raise MarketStoreError(f"no result of {volunteer} for job {job_id} slot {slot}")

    def results(self, job_id: str) -> list[ResultRow]:
        """The job's results by slot, then arrival."""
        with self._lock:
            rows = list(
                self.db.table("market_results").rows_where(
                    "job_id = ?", [job_id], order_by="slot, at, volunteer"
                )
            )
        return [ResultRow(**r) for r in rows]

    # -- volunteers' credit -------------------------------------------------------------------

    def credit(
        self,
        did: str,
        *,
        rendered_ms: int = 0,
        accepted: int = 0,
        rejected: int = 0,
        expired: int = 0,
        leases: int = 0,
        now: float | None = None,
    ) -> VolunteerRow:
        """Add to a volunteer's counts (creating its row if new) and return the new row."""
        counts = {
            "rendered_ms": rendered_ms,
            "accepted": accepted,
            "rejected": rejected,
            "expired": expired,
            "leases": leases,
        }
        negative = [k for k, v in counts.items() if v < 0]
        if negative:
            raise MarketStoreError(f"credit increments must be >= 0: {', '.join(negative)}")
        seen = time.time() if now is None else now
        columns = ", ".join(_COUNTERS)
        marks = ", ".join("?" for _ in _COUNTERS)
        sums = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTERS)
        with self._lock, self.db.conn:
            self.db.execute(
                f"insert into market_volunteers (did, {columns}, last_seen) "
                f"values (?, {marks}, ?) on conflict(did) do update set {sums}, "
                "last_seen = max(coalesce(last_seen, 0), excluded.last_seen)",
                [did, *(counts[c] for c in _COUNTERS), seen],
            )
            row = next(self.db.table("market_volunteers").rows_where("did = ?", [did]))
        return VolunteerRow(**row)

    def volunteer(self, did: str) -> VolunteerRow | None:
        with self._lock:
            rows = list(self.db.table("market_volunteers").rows_where("did = ?", [did]))
        return VolunteerRow(**rows[0]) if rows else None

    def volunteers(self) -> list[VolunteerRow]:
        """Best reputation first (then most accepted, then did)."""
        with self._lock:
            rows = [VolunteerRow(**r) for r in self.db.table("market_volunteers").rows]
        return sorted(rows, key=lambda v: (-v.reputation, -v.accepted, v.did))

    # -- the network-wide step cache ----------------------------------------------------------

    def put_verdict(self, row: VerdictRow) -> bool:
        """Remember an announced verdict; the FIRST one for a cache id is kept (a later
        announcement cannot replace an output others may already reuse). True if stored."""
        data = asdict(row) | {"receipts": json.dumps(row.receipts)}
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self._lock, self.db.conn:
            cursor = self.db.execute(
                f"insert into market_verdicts ({columns}) values ({marks}) "
                "on conflict(cache_id) do nothing",
                list(data.values()),
            )
            return cursor.rowcount == 1

    def forget_verdict(self, cache_id: str) -> None:
        """Drop a verdict (e.g. its output could not be fetched or failed verification)."""
        with self._lock, self.db.conn:
            self.db.execute("delete from market_verdicts where cache_id = ?", [cache_id])

    def verdict(self, cache_id: str) -> VerdictRow | None:
        with self._lock:
            rows = list(self.db.table("market_verdicts").rows_where("cache_id = ?", [cache_id]))
        if not rows:
            return None
        return VerdictRow(**(rows[0] | {"receipts": json.loads(rows[0]["receipts"])}))

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()


def _check_verdict(verdict: str) -> None:
    if verdict not in RESULT_VERDICTS:
        raise MarketStoreError(f"unknown result verdict {verdict!r} (pending, accepted, rejected)")
