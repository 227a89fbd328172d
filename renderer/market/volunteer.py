"""Leases, volunteer side: which jobs we know, which we offered on, which slots we hold.

The volunteer's half of the lease rule in :mod:`renderer.market.leases`: it works on a slot only
while its latest lease from the job's requester has not expired, less ``margin`` seconds; past
that it stops, so by the time the requester hands the slot to someone else (``grace`` seconds
after the expiry) it has given up. A lease is believed only when signed by the requester who
signed the job. Pure: the adapter passes the records and the clock in, and acts on the answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .jobspec import JobSpec

__all__ = ["Held", "KnownJob", "LeaseAnswer", "VolunteerBook"]


class LeaseAnswer(enum.Enum):
    START = "start"  # a new lease for us: begin the work
    RENEWED = "renewed"  # our lease was extended
    RELEASE = "release"  # a lease we cannot take (at capacity): give it back
    LOST = "lost"  # someone else now holds a slot we thought ours: stop
    IGNORE = "ignore"  # not ours, not from the job's requester, or about a job we do not know


@dataclass
class KnownJob:
    spec: JobSpec
    first_seen: float
    refused: str | None = None  # a static policy refusal (never offered)
    offered_at: float | None = None
    closed: bool = False


@dataclass
class Held:
    job_id: str
    slot: int
    expires: float
    started: float


@dataclass
class VolunteerBook:
    did: str
    capacity: int
    margin_s: float = 1.0
    reoffer_s: float = 15.0  # offer again on a still-open job we did not get after this long
    jobs: dict[str, KnownJob] = field(default_factory=dict)
    held: dict[tuple[str, int], Held] = field(default_factory=dict)
    # Slots we finished or gave up: a renewal of that lease still in flight must not restart
    # the work. Forgotten when we offer on the job again (a new lease may then follow).
    given_up: set[tuple[str, int]] = field(default_factory=set)

    def see_job(self, spec: JobSpec, now: float, refused: str | None = None) -> KnownJob:
        """A job (or its re-announcement) was gossiped; ``refused`` is the static policy's
        answer. A re-announcement makes us willing to offer again."""
        known = self.jobs.get(spec.job_id)
        if known is None:
            known = self.jobs[spec.job_id] = KnownJob(spec, now, refused)
        elif spec.requester == known.spec.requester:
            known.spec = spec
            if not self._holding(spec.job_id):
                known.offered_at = None
        return known

    def should_offer(self, job_id: str, now: float) -> bool:
        known = self.jobs.get(job_id)
        if known is None or known.closed or known.refused is not None:
            return False
        if now >= known.spec.deadline or self._holding(job_id):
            return False
        return known.offered_at is None or now - known.offered_at >= self.reoffer_s

    def offered(self, job_id: str, now: float) -> None:
        self.jobs[job_id].offered_at = now
        self.given_up = {key for key in self.given_up if key[0] != job_id}

    def offerable(self, now: float) -> list[str]:
        return [job_id for job_id in self.jobs if self.should_offer(job_id, now)]

    def on_lease(
        self, job_id: str, slot: int, volunteer: str, expires: float, signer: str, now: float
    ) -> LeaseAnswer:
        known = self.jobs.get(job_id)
        if known is None or known.closed or signer != known.spec.requester:
            return LeaseAnswer.IGNORE
        if known.refused is not None:
            return LeaseAnswer.IGNORE  # outside our policy: never taken, whoever leases it
        key = (job_id, slot)
        if volunteer != self.did:
            return LeaseAnswer.LOST if key in self.held else LeaseAnswer.IGNORE
        if key in self.held:
            self.held[key].expires = max(self.held[key].expires, expires)
            return LeaseAnswer.RENEWED
        if key in self.given_up:
            return LeaseAnswer.IGNORE  # a late renewal of a lease we are done with
        if expires - self.margin_s <= now:
            return LeaseAnswer.IGNORE  # arrived already expired
        if len(self.held) >= self.capacity or self._holding(job_id):
            return LeaseAnswer.RELEASE
        self.held[key] = Held(job_id, slot, expires, now)
        return LeaseAnswer.START

    def on_close(self, job_id: str, signer: str) -> list[tuple[str, int]]:
        """The requester closed the job: the slots we hold on it (to stop)."""
        known = self.jobs.get(job_id)
        if known is None or signer != known.spec.requester:
            return []
        known.closed = True
        return [key for key in self.held if key[0] == job_id]

    def expired(self, now: float) -> list[tuple[str, int]]:
        """Slots whose lease ran out (less the margin): stop working on them."""
        return [key for key, h in self.held.items() if now >= h.expires - self.margin_s]

    def finished(self, job_id: str, slot: int) -> None:
        if self.held.pop((job_id, slot), None) is not None:
            self.given_up.add((job_id, slot))

    def forget_old(self, now: float) -> None:
        """Drop jobs past their deadline that we hold nothing of (bounded memory)."""
        for job_id in [j for j, k in self.jobs.items() if now > k.spec.deadline]:
            if not self._holding(job_id):
                del self.jobs[job_id]
                self.given_up = {key for key in self.given_up if key[0] != job_id}

    def _holding(self, job_id: str) -> bool:
        return any(key[0] == job_id for key in self.held)
