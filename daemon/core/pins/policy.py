"""The pinning policy's decisions, as pure functions over plain records (no I/O).

Each round the daemon gathers what the policies want (:class:`Candidate`: a followed creator's
repo head, or one of the N most popular works) and what is pinned, and these functions say
what to pin, what to unpin, and — under a storage quota — which policy pins to give up.

Quota rule: ``local`` and ``explicit`` pins (and ``remote`` ones, promised to a client of the
Pinning Service API) are never given up; their bytes are counted first. The evictable policy
pins (``followed``, ``popular``) are then taken from the most valuable down, each adding the
bytes it does not share with what is already counted; at the first one that does not fit, it
and every less valuable one are unpinned. So a less valuable pin is never kept while a more
valuable one is dropped. Followed creators rank above popular works (the operator chose them);
within a kind, by decayed popularity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "EVICTABLE",
    "Candidate",
    "PinChanges",
    "QuotaPlan",
    "fit_quota",
    "plan_changes",
    "value_order",
]

EVICTABLE = ("followed", "popular")
_KIND_RANK = {"followed": 1, "popular": 0}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pin a policy wants: ``cid`` for ``reason``, worth ``value`` (higher: keep longer)."""

    cid: str
    reason: str
    value: float
    note: str = ""  # what it is: the creator's did, or the work's score


@dataclass(frozen=True, slots=True)
class PinChanges:
    pin: list[Candidate] = field(default_factory=list)
    unpin: list[tuple[str, str]] = field(default_factory=list)  # (cid, reason)


def plan_changes(
    wanted: Iterable[Candidate], pinned: dict[str, frozenset[str]], skip: frozenset[str]
) -> PinChanges:
    """What to pin and unpin so that the policy reasons match ``wanted``.

    ``pinned``: CID -> its current reasons. ``skip``: CIDs not to pin again this round (given
    up for the quota lately, or failing to fetch)."""
    wanted = list(wanted)
    want = {(c.cid, c.reason) for c in wanted}
    changes = PinChanges()
    for c in wanted:
        if c.reason not in pinned.get(c.cid, frozenset()) and c.cid not in skip:
            changes.pin.append(c)
    for cid, reasons in pinned.items():
        for reason in sorted(reasons):
            if reason in EVICTABLE and (cid, reason) not in want:
                changes.unpin.append((cid, reason))
    return changes


def value_order(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Most valuable first: followed before popular, then by value, then by CID (stable)."""
    return sorted(candidates, key=lambda c: (-_KIND_RANK.get(c.reason, 0), -c.value, c.cid))


@dataclass(frozen=True, slots=True)
class QuotaPlan:
    keep: list[Candidate]
    drop: list[Candidate]
    kept_bytes: int  # protected bytes plus what the kept policy pins add

    @property
    def over_quota(self) -> bool:
        return bool(self.drop)


def fit_quota(
    protected_bytes: int, ordered: Sequence[tuple[Candidate, int]], quota: int
) -> QuotaPlan:
    """``ordered``: evictable pins most valuable first, each with the bytes it adds to what
    comes before it. Keep from the top while the total stays within ``quota``; drop the first
    that does not fit and everything after it. ``quota`` 0 means no quota."""
    total = protected_bytes
    keep: list[Candidate] = []
    for i, (candidate, extra) in enumerate(ordered):
        if quota and total + extra > quota:
            return QuotaPlan(keep, [c for c, _ in ordered[i:]], total)
        total += extra
        keep.append(candidate)
    return QuotaPlan(keep, [], total)
