"""Volunteer reputation as a requester sees it: counts of accepted, rejected and expired work.

BOINC keeps a per-host error rate and lets hosts with a long clean record skip replication;
this is the same idea with three counts. A result is *accepted* when it agrees with the quorum
(or passes verification alone), *rejected* when it disagrees, and a lease *expired* when the
volunteer went silent. Pure arithmetic, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Credit", "REJECT_WEIGHT", "is_avoided", "is_trusted", "reputation"]

REJECT_WEIGHT = 4  # a wrong result costs as much as four good ones earn
EXPIRE_WEIGHT = 0.5  # going silent is bad, but machines do crash


@dataclass(frozen=True)
class Credit:
    accepted: int = 0
    rejected: int = 0
    expired: int = 0
    rendered_ms: int = 0


def reputation(credit: Credit) -> float:
    """A score in (0, 1): 0.5 for a stranger, rising with accepted work, falling fast with
    rejected results and slowly with expired leases."""
    good = credit.accepted + 1
    bad = REJECT_WEIGHT * credit.rejected + EXPIRE_WEIGHT * credit.expired + 1
    return good / (good + bad)


def is_trusted(credit: Credit, trust_after: int) -> bool:
    """Trusted volunteers may get one replica (with random spot checks): a clean record of at
    least ``trust_after`` accepted results and no rejected one."""
    return credit.rejected == 0 and credit.accepted >= max(1, trust_after)


def is_avoided(credit: Credit) -> bool:
    """Volunteers whose results were outvoted and whose record does not outweigh it get no
    leases."""
    return credit.rejected > 0 and reputation(credit) < 0.5
