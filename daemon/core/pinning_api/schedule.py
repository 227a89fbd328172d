"""Which queued pin requests get the Pinning Service's free fetch slots: fair across tokens.

Sans-I/O: :func:`choose` takes the queued requests (oldest first), how many fetches each token
has running, the free slots and the per-token cap, and returns the requests to start; the
worker (:mod:`daemon.core.pinning_api.worker`) does the fetching.

Theory of operation. A fetch holds its slot until its DAG is complete or the fetch timeout ends
(ten minutes by default), so a token that asks for CIDs nobody has could keep every slot for
that long. Two rules stop that:

- **A cap per token.** A token never holds more than ``per_token`` slots (by default half of
  ``[pinning] max_concurrent``, rounded up), whether or not others are waiting: fetches are
  not pre-empted (a pre-empted fetch would start its timeout again), so the slots a token
  cannot take must already be free when another token's request arrives.
- **Round robin.** Free slots go one at a time to the token with the fewest fetches running,
  ties to the one whose oldest queued request is oldest; each token's requests start oldest
  first. A token with a thousand queued requests does not delay another token's single one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Queued", "choose", "per_token_slots"]


@dataclass(frozen=True, slots=True)
class Queued:
    """A queued request as the scheduler sees it."""

    requestid: str
    owner: str  # the token's name
    created_ms: int


def per_token_slots(max_concurrent: int, configured: int = 0) -> int:
    """The fetch slots one token may hold: ``configured`` if set (1..max_concurrent), else half
    of ``max_concurrent`` rounded up (one slot of one, two of three or four)."""
    if max_concurrent < 1:
        raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
    if configured:
        return max(1, min(configured, max_concurrent))
    return math.ceil(max_concurrent / 2)


def choose(
    queued: Sequence[Queued],
    running: Mapping[str, int],
    free: int,
    per_token: int,
) -> list[Queued]:
    """The requests to start now, in the order to start them.

    ``queued`` holds the waiting requests (any order; each token's are taken oldest first),
    ``running`` the fetches each token (by name) has in progress, ``free`` the idle slots."""
    if per_token < 1:
        raise ValueError(f"per_token must be at least 1, got {per_token}")
    waiting: dict[str, list[Queued]] = {}
    for request in sorted(queued, key=lambda r: (r.created_ms, r.requestid)):
        waiting.setdefault(request.owner, []).append(request)
    busy = dict(running)
    chosen: list[Queued] = []
    while free > 0:
        eligible = [o for o, reqs in waiting.items() if reqs and busy.get(o, 0) < per_token]
        if not eligible:
            break
        owner = min(eligible, key=lambda o: (busy.get(o, 0), waiting[o][0].created_ms))
        chosen.append(waiting[owner].pop(0))
        busy[owner] = busy.get(owner, 0) + 1
        free -= 1
    return chosen
