"""Leases, requester side: who holds which replica slot of a job, until when.

Everything that changes a slot lives in :data:`TRANSITIONS`; an event a slot's state does not
allow raises :class:`LeaseError` naming the state. This module does not do I/O or know about
gossip: the adapter feeds it offers, heartbeats, results and the clock, and publishes the
leases it hands out.

The rule that keeps two volunteers from both believing they hold a slot: a lease names one
volunteer and an expiry time. The volunteer works only while its latest lease has not expired
(minus a safety margin); the requester renews the lease on each heartbeat, and hands the slot
to someone else only ``grace`` seconds *after* the expiry, so the old holder has already given
up by its own clock (clocks on the two machines may differ by less than the grace).

Independence: a volunteer holds at most one slot of a job, and a volunteer whose lease expired
or whose result was refused is not given that job again.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from .quorum import SlotResult, Verdict, decide, quorum_reachable
from .reputation import Credit, is_avoided, reputation

__all__ = [
    "Grant",
    "JobBook",
    "LeaseError",
    "Offer",
    "Slot",
    "SlotState",
    "TRANSITIONS",
    "choose_volunteers",
]


class LeaseError(Exception):
    """An event that the slot's current state does not allow."""


class SlotState(enum.Enum):
    OPEN = "open"
    LEASED = "leased"
    DONE = "done"
    CLOSED = "closed"


TRANSITIONS: dict[tuple[SlotState, str], SlotState] = {
    (SlotState.OPEN, "grant"): SlotState.LEASED,
    (SlotState.LEASED, "renew"): SlotState.LEASED,
    (SlotState.LEASED, "expire"): SlotState.OPEN,
    (SlotState.LEASED, "release"): SlotState.OPEN,
    (SlotState.LEASED, "result"): SlotState.DONE,
    (SlotState.DONE, "refuse"): SlotState.OPEN,  # the result failed verification
    (SlotState.OPEN, "close"): SlotState.CLOSED,
    (SlotState.LEASED, "close"): SlotState.CLOSED,
    (SlotState.DONE, "close"): SlotState.DONE,
    (SlotState.CLOSED, "close"): SlotState.CLOSED,
}


@dataclass
class Slot:
    index: int
    state: SlotState = SlotState.OPEN
    volunteer: str | None = None
    expires: float = 0.0
    frames: int = 0
    result: SlotResult | None = None
    not_before: float = 0.0  # a reopened slot is granted again only after its last lease lapsed

    def apply(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            state = self.state.value
            raise LeaseError(f"slot {self.index}: cannot {event} a {state} slot") from None


@dataclass(frozen=True)
class Offer:
    volunteer: str
    capacity: int
    at: float


@dataclass(frozen=True)
class Grant:
    job_id: str
    slot: int
    volunteer: str
    expires: float


@dataclass
class JobBook:
    """One job, requester side: its slots, the offers received and the results."""

    job_id: str
    replicas: int
    lease_s: float
    grace_s: float = 1.0
    max_replicas: int = 9
    offers: dict[str, Offer] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    slots: list[Slot] = field(default_factory=list)
    granted_once: bool = False

    def __post_init__(self) -> None:
        if not self.slots:
            self.slots = [Slot(i) for i in range(self.replicas)]

    # -- events --------------------------------------------------------------------------------
    def offer(self, volunteer: str, capacity: int, now: float) -> None:
        self.offers[volunteer] = Offer(volunteer, capacity, now)

    def grant(self, slot: int, volunteer: str, now: float) -> Grant:
        if volunteer in self.excluded or volunteer in self.holders():
            raise LeaseError(f"{volunteer} may not hold a second slot of job {self.job_id}")
        target = self.slots[slot]
        if target.state is SlotState.OPEN and now < target.not_before:
            raise LeaseError(f"slot {slot}: its last lease has not lapsed yet")
        target.apply("grant")
        target.volunteer, target.expires, target.frames = volunteer, now + self.lease_s, 0
        self.granted_once = True
        return Grant(self.job_id, slot, volunteer, target.expires)

    def renew(self, volunteer: str, slot: int, now: float, frames: int = 0) -> Grant | None:
        """A heartbeat: the holder's lease is extended (None if it is not the holder)."""
        target = self._held(volunteer, slot)
        if target is None:
            return None
        target.apply("renew")
        target.expires, target.frames = now + self.lease_s, max(target.frames, frames)
        return Grant(self.job_id, slot, volunteer, target.expires)

    def release(self, volunteer: str, slot: int) -> bool:
        """The holder cannot do the work after all; the slot reopens (its offer is dropped)."""
        target = self._held(volunteer, slot)
        if target is None:
            return False
        target.apply("release")
        target.volunteer = None
        target.not_before = target.expires + self.grace_s  # a renewal may still be in flight
        self.offers.pop(volunteer, None)
        return True

    def result(self, volunteer: str, slot: int, result: SlotResult) -> bool:
        target = self._held(volunteer, slot)
        if target is None:
            return False
        target.apply("result")
        target.result = result
        return True

    def refuse(self, volunteers: set[str]) -> None:
        """Results from ``volunteers`` failed verification: reopen their slots, exclude them."""
        for slot in self.slots:
            if slot.state is SlotState.DONE and slot.volunteer in volunteers:
                slot.apply("refuse")
                slot.volunteer, slot.result = None, None
                slot.not_before = slot.expires + self.grace_s
        self.excluded |= volunteers

    def expire_due(self, now: float) -> list[str]:
        """Reopen slots whose lease ran out ``grace`` seconds ago; the silent volunteers."""
        silent = []
        for slot in self.slots:
            if slot.state is SlotState.LEASED and now >= slot.expires + self.grace_s:
                assert slot.volunteer is not None
                silent.append(slot.volunteer)
                slot.apply("expire")
                slot.volunteer = None
        self.excluded |= set(silent)
        for volunteer in silent:
            self.offers.pop(volunteer, None)
        return silent

    def set_replicas(self, replicas: int) -> None:
        """Change the replica count (adaptive replication, or one more after a disagreement).
        Growing adds open slots; shrinking closes open slots from the end."""
        replicas = max(1, min(replicas, self.max_replicas))
        while self.live_slots() < replicas:
            self.slots.append(Slot(len(self.slots)))
        for slot in reversed(self.slots):
            if self.live_slots() <= replicas:
                break
            if slot.state is SlotState.OPEN:
                slot.apply("close")
        self.replicas = replicas

    def close_open(self) -> None:
        """A quorum agrees: no new replicas are needed (leased ones may still finish)."""
        for slot in self.slots:
            if slot.state is SlotState.OPEN:
                slot.apply("close")

    def running(self) -> int:
        return sum(1 for s in self.slots if s.state is SlotState.LEASED)

    def close(self) -> list[Slot]:
        """The job is over: close every slot; the ones still leased (their holders stop)."""
        leased = [s for s in self.slots if s.state is SlotState.LEASED]
        for slot in self.slots:
            slot.apply("close")
        return leased

    # -- views ---------------------------------------------------------------------------------
    def _held(self, volunteer: str, slot: int) -> Slot | None:
        if not 0 <= slot < len(self.slots):
            return None
        target = self.slots[slot]
        if target.state is not SlotState.LEASED or target.volunteer != volunteer:
            return None
        return target

    def holders(self) -> set[str]:
        return {
            s.volunteer
            for s in self.slots
            if s.state in (SlotState.LEASED, SlotState.DONE) and s.volunteer
        }

    def open_slots(self) -> list[int]:
        return [s.index for s in self.slots if s.state is SlotState.OPEN]

    def grantable(self, now: float) -> list[int]:
        """Open slots whose previous lease (if any) has lapsed everywhere."""
        return [s.index for s in self.slots if s.state is SlotState.OPEN and now >= s.not_before]

    def live_slots(self) -> int:
        return sum(1 for s in self.slots if s.state is not SlotState.CLOSED)

    def results(self) -> list[SlotResult]:
        return [s.result for s in self.slots if s.state is SlotState.DONE and s.result]

    def verdict(self) -> Verdict | None:
        return decide(self.results(), self.replicas)

    def needs_another_replica(self) -> bool:
        """No quorum is possible with the slots left: a tie-break replica is needed."""
        pending = sum(1 for s in self.slots if s.state in (SlotState.OPEN, SlotState.LEASED))
        return self.verdict() is None and not quorum_reachable(
            self.results(), self.replicas, pending
        )

    def candidates(self) -> list[Offer]:
        taken = self.holders() | self.excluded
        return [o for o in self.offers.values() if o.volunteer not in taken]


def choose_volunteers(
    book: JobBook,
    *,
    load: Mapping[str, int],
    credits: Mapping[str, Credit],
    rng: random.Random,
    now: float,
) -> list[tuple[int, str]]:
    """Which open slot goes to which offering volunteer, now.

    Volunteers with results outvoted (and not redeemed) are skipped; the others are taken
    least loaded first (leases this requester has given them against the capacity they
    offered), then best reputation, so independent steps spread over the volunteers."""
    slots = book.grantable(now)
    if not slots:
        return []
    ranked = []
    for offer in book.candidates():
        credit = credits.get(offer.volunteer, Credit())
        busy = load.get(offer.volunteer, 0)
        if is_avoided(credit) or busy >= offer.capacity:
            continue
        ranked.append((busy / offer.capacity, -reputation(credit), rng.random(), offer.volunteer))
    ranked.sort()
    return list(zip(slots, [r[3] for r in ranked], strict=False))
