"""How popular each work is lately: usage scores that decay exponentially over time.

A gateway request adds 1 to a work's score, a fediverse like 5, a boost 10 (:data:`WEIGHTS`);
every score halves each ``half_life`` (72 h by default), so last week's hit fades behind this
morning's. The score is stored with the time it was last updated and decayed when read.

Ranking does not need every score re-decayed: ``score · 2^(-(now - t)/h)`` orders works the
same as ``log2(score) + t/h`` (the ``now`` term is common to all), so that *rank key* is stored
and indexed, and the top N is one indexed query however many works there are.

Gateway requests are counted once per client and work in a ``window`` (10 minutes): a video
player's many range requests, or a reload, are one view. :class:`RequestDedup` is pure.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

from dag.sqlite_db import open_sqlite

__all__ = [
    "WEIGHTS",
    "PopularityStore",
    "RequestDedup",
    "Score",
    "decayed",
    "rank_key",
]

WEIGHTS: dict[str, float] = {"request": 1.0, "like": 5.0, "boost": 10.0}


def decayed(score: float, updated: float, now: float, half_life_s: float) -> float:
    """``score`` set at ``updated``, as it stands at ``now`` (never grows going forward)."""
    return score * 2.0 ** (-max(0.0, now - updated) / half_life_s)


def rank_key(score: float, updated: float, half_life_s: float) -> float:
    """Orders works as their decayed scores do at any common ``now``."""
    return math.log2(score) + updated / half_life_s


@dataclass(frozen=True, slots=True)
class Score:
    cid: str
    score: float  # decayed to the time it was read
    events: int


class RequestDedup:
    """Whether a gateway request is a new view: once per (client, work) per ``window_s``.
    Remembers at most ``max_entries`` pairs, forgetting the oldest first."""

    def __init__(self, window_s: float = 600.0, max_entries: int = 100_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def is_new_view(self, client: str, cid: str, now: float) -> bool:
        key = (client, cid)
        last = self._seen.get(key)
        if last is not None and now - last < self.window_s:
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True


class PopularityStore:
    """Scores in SQLite (``popularity.db``); blocking methods, called from worker threads."""

    def __init__(self, path: str | os.PathLike[str], half_life_s: float) -> None:
        if half_life_s <= 0:
            raise ValueError("the half-life must be positive")
        self.half_life_s = half_life_s
        self._conn = open_sqlite(path)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute(
                "create table if not exists popularity (cid text primary key, score real not null,"
                " updated real not null, rank real not null, events integer not null)"
            )
            self._conn.execute("create index if not exists popularity_rank on popularity (rank)")

    def add(self, events: list[tuple[str, str, float]]) -> None:
        """Record ``(cid, kind, at)`` events (kind a key of :data:`WEIGHTS`) in one transaction."""
        h = self.half_life_s
        with self._lock, self._conn:
            for cid, kind, at in events:
                weight = WEIGHTS[kind]
                row = self._conn.execute(
                    "select score, updated, events from popularity where cid = ?", [cid]
                ).fetchone()
                if row is None:
                    score, count, updated = weight, 1, at
                else:
                    updated = max(at, row[1])
                    score = decayed(row[0], row[1], updated, h) + decayed(weight, at, updated, h)
                    count = row[2] + 1
                self._conn.execute(
                    "insert or replace into popularity values (?, ?, ?, ?, ?)",
                    [cid, score, updated, rank_key(score, updated, h), count],
                )

    def top(self, n: int, now: float) -> list[Score]:
        """The ``n`` most popular works at ``now``, most popular first."""
        with self._lock:
            rows = self._conn.execute(
                "select cid, score, updated, events from popularity order by rank desc, cid"
                " limit ?",
                [n],
            ).fetchall()
        return [Score(c, decayed(s, u, now, self.half_life_s), e) for c, s, u, e in rows]

    def scores(self, cids: list[str], now: float) -> dict[str, float]:
        out: dict[str, float] = {}
        with self._lock:
            for start in range(0, len(cids), 500):
                chunk = cids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for c, s, u in self._conn.execute(
                    f"select cid, score, updated from popularity where cid in ({marks})", chunk
                ).fetchall():
                    out[c] = decayed(s, u, now, self.half_life_s)
        return out

    def close(self) -> None:
        self._conn.close()
