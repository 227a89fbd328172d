"""Per-peer accounting of gossip messages: counts by reject reason and a decaying score.

Pure (time is passed in), so it is tested without a network. A peer's score is
``min(valid_credit, credit_cap) - penalty``; every invalid message adds its reason's penalty,
and the penalty decays exponentially (``half_life_s``), so a peer that misbehaved once is
forgiven after a few minutes while one that keeps sending garbage stays below
``graylist_threshold`` and is ignored. Replays and stale messages cost less than forged ones:
an honest peer can forward an old message it had not seen, but it never forges a signature.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DEFAULT_PENALTIES", "PeerScores", "PeerStats"]

DEFAULT_PENALTIES: dict[str, float] = {
    "too-big": 10.0,
    "bad-cbor": 10.0,
    "bad-schema": 10.0,
    "wrong-topic": 10.0,
    "bad-signature": 20.0,
    "rejected": 10.0,
    "too-old": 2.0,
    "from-future": 2.0,
    "replay": 5.0,
    "graylisted": 0.0,
    "bad-block": 20.0,  # charged by the daemon: a bitswap block that did not match its CID
}


@dataclass(slots=True)
class PeerStats:
    """What one peer sent us: valid messages, invalid ones by reason, and its score now."""

    valid: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    score: float = 0.0
    graylisted: bool = False

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())


@dataclass(slots=True)
class _PeerState:
    valid: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    penalty: float = 0.0
    credit: float = 0.0
    updated: float = 0.0


class PeerScores:
    """Scores of the peers we hear from, keyed by peer id (base58 text)."""

    def __init__(
        self,
        *,
        half_life_s: float = 120.0,
        graylist_threshold: float = -50.0,
        credit_per_valid: float = 0.1,
        credit_cap: float = 10.0,
        penalties: dict[str, float] | None = None,
        max_peers: int = 10_000,
    ) -> None:
        self.half_life_s = half_life_s
        self.graylist_threshold = graylist_threshold
        self.credit_per_valid = credit_per_valid
        self.credit_cap = credit_cap
        self.penalties = dict(DEFAULT_PENALTIES if penalties is None else penalties)
        self.max_peers = max_peers
        self._peers: dict[str, _PeerState] = {}

    def _state(self, peer: str, now: float) -> _PeerState:
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= self.max_peers:  # forget the quietest peer with no debt
                quiet = min(
                    self._peers, key=lambda p: (self._peers[p].penalty > 0, self._peers[p].updated)
                )
                del self._peers[quiet]
            state = self._peers[peer] = _PeerState(updated=now)
        elif now > state.updated:
            state.penalty *= math.pow(0.5, (now - state.updated) / self.half_life_s)
            state.updated = now
        return state

    def record_valid(self, peer: str, now: float) -> None:
        state = self._state(peer, now)
        state.valid += 1
        state.credit = min(self.credit_cap, state.credit + self.credit_per_valid)

    def record_invalid(self, peer: str, reason: str, now: float) -> None:
        state = self._state(peer, now)
        state.invalid[reason] += 1
        state.penalty += self.penalties.get(reason, 10.0)

    def score(self, peer: str, now: float) -> float:
        if peer not in self._peers:
            return 0.0
        state = self._state(peer, now)
        return state.credit - state.penalty

    def is_graylisted(self, peer: str, now: float) -> bool:
        return self.score(peer, now) < self.graylist_threshold

    def stats(self, now: float) -> dict[str, PeerStats]:
        out = {}
        for peer in list(self._peers):
            score = self.score(peer, now)
            state = self._peers[peer]
            out[peer] = PeerStats(
                state.valid, Counter(state.invalid), score, score < self.graylist_threshold
            )
        return out
