"""Choosing the canonical render of a step from independent results, as BOINC's validator does.

Results agree when their decoded-content keys agree (the hash of the decoded pictures and
sound, not of the container bytes) and they report the same logical duration. With ``k``
replicas a result is accepted once a strict majority of ``k`` agrees; results that disagree
with the accepted one are wrong and cost their volunteers reputation.

Adaptive replication: a requester asks for ``k`` replicas; when the first volunteer to get a
lease is trusted (:func:`renderer.market.reputation.is_trusted`), the job drops to one replica,
except on a random spot check (probability ``spot_check``), when it keeps all ``k``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from dag import CID

__all__ = ["SlotResult", "Verdict", "decide", "quorum_size", "replicas_after_first_grant"]


@dataclass(frozen=True)
class SlotResult:
    volunteer: str  # did
    slot: int
    receipt: CID
    output: CID
    content_key: str
    duration_ms: int | None
    render_ms: int
    kind: str = "media"

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.content_key, self.duration_ms)


@dataclass(frozen=True)
class Verdict:
    key: tuple[str, int | None]
    agreeing: tuple[SlotResult, ...]
    disagreeing: tuple[SlotResult, ...]

    @property
    def content_key(self) -> str:
        return self.key[0]

    @property
    def duration_ms(self) -> int | None:
        return self.key[1]


def quorum_size(replicas: int) -> int:
    """Agreeing results needed out of ``replicas``: a strict majority (1 of 1, 2 of 2 or 3)."""
    return replicas // 2 + 1


def decide(results: Sequence[SlotResult], replicas: int) -> Verdict | None:
    """The verdict once a quorum agrees, else None (more results are needed)."""
    groups: dict[tuple[str, int | None], list[SlotResult]] = {}
    for result in results:
        groups.setdefault(result.key, []).append(result)
    if not groups:
        return None
    key, best = max(groups.items(), key=lambda item: len(item[1]))
    if len(best) < quorum_size(replicas):
        return None
    others = tuple(r for r in results if r.key != key)
    return Verdict(key, tuple(best), others)


def quorum_reachable(results: Sequence[SlotResult], replicas: int, pending: int) -> bool:
    """Can ``pending`` more results still make a quorum among ``replicas``?"""
    counts: dict[tuple[str, int | None], int] = {}
    for result in results:
        counts[result.key] = counts.get(result.key, 0) + 1
    best = max(counts.values(), default=0)
    return best + pending >= quorum_size(replicas)


def replicas_after_first_grant(
    requested: int,
    *,
    trusted: bool,
    adaptive: bool,
    verify: bool,
    spot_check: float,
    rng: random.Random,
) -> int:
    """How many replicas a job needs once its first lease goes to a volunteer."""
    if requested <= 1 or verify or not adaptive or not trusted:
        return requested
    return requested if rng.random() < spot_check else 1
