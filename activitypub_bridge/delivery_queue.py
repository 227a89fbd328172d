"""The persistent delivery queue: one SQLite row per (activity, inbox), in WAL mode.

A row's state is computed by ``delivery_schedule`` (the state machine and retry policy); this
module only stores it, atomically. Plain ``sqlite3`` rather than sqlite-utils: the claim needs
``BEGIN IMMEDIATE`` and ``UPDATE ... RETURNING`` in one transaction, which sqlite-utils does not
wrap. Methods are blocking; the trio worker calls them through ``trio.to_thread``, so a lock
serialises the one connection between threads.

What "exactly once" can and cannot mean here. Over HTTP no sender can guarantee that a receiver
processes a message exactly once: if the process dies (or the connection drops) after the
receiver has accepted the POST but before we have recorded the 2xx, we cannot know whether it
arrived, and the only safe choice is to send again. So, towards the network, delivery is
*at-least-once*. What this queue guarantees from our side is:

- exactly one row per (activity id, inbox): ``enqueue`` is idempotent, so a publish retried by
  the user or replayed after a crash never creates a second delivery;
- a row that reached ``delivered`` (or ``dead``) is never claimed again;
- a row is sent by one worker at a time (``claim_due`` marks it ``in-flight`` in the same
  transaction that selects it), and a row left ``in-flight`` by a crash goes back to ``queued``
  when the queue is opened again: it is re-sent at most once per crash.

The rest is the receiver's job, and ActivityPub gives it the means: every activity has a
stable ``id``; receivers (Mastodon included) ignore an activity whose id they have already
processed. With that de-duplication the *effect* is exactly once per follower, which is what
the kill -9 test checks. Crash recovery on open assumes one worker process per queue file (the
daemon); a second concurrent worker would need leases instead.
"""

from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from activitypub_bridge.delivery_schedule import (
    CLAIMABLE_STATES,
    DeliveryError,
    DeliveryEvent,
    DeliveryState,
    Outcome,
    RetryPolicy,
    decide,
    transition,
)
from dag.sqlite_db import open_sqlite

__all__ = ["Delivery", "DeliveryQueue", "QueueStats", "inbox_host"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    activity_id TEXT NOT NULL,
    inbox TEXT NOT NULL,
    host TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    last_status INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    delivered_at REAL,
    UNIQUE (activity_id, inbox)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_host ON deliveries (host, state);
"""

_COLUMNS = (
    "id, activity_id, inbox, host, body, state, attempts, next_at, last_error, last_status, "
    "created, updated, delivered_at"
)


_SWEEP_EVERY = 30.0  # seconds between sweeps of expired rows to dead


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


_CLAIMABLE = tuple(sorted(CLAIMABLE_STATES))


@dataclass(frozen=True)
class Delivery:
    """One row of the queue: one activity to one inbox."""

    id: int
    activity_id: str
    inbox: str
    host: str
    body: bytes
    state: DeliveryState
    attempts: int
    next_at: float
    last_error: str | None
    last_status: int | None
    created: float
    updated: float
    delivered_at: float | None

    @classmethod
    def _from_row(cls, row: tuple[Any, ...]) -> Delivery:
        (id_, activity_id, inbox, host, body, state, *rest) = row
        return cls(id_, activity_id, inbox, host, bytes(body), DeliveryState(state), *rest)

    def to_json(self) -> dict[str, Any]:
        """The row as ``artdag deliveries`` shows it (the body only by its size)."""
        return {
            "id": self.id,
            "activity_id": self.activity_id,
            "inbox": self.inbox,
            "host": self.host,
            "state": str(self.state),
            "attempts": self.attempts,
            "next_at": self.next_at,
            "last_error": self.last_error,
            "last_status": self.last_status,
            "created": self.created,
            "updated": self.updated,
            "delivered_at": self.delivered_at,
            "body_size": len(self.body),
        }


@dataclass(frozen=True)
class QueueStats:
    """Counts per state, and when the next pending delivery is due (None if none pending)."""

    counts: dict[DeliveryState, int]
    next_due: float | None

    def to_json(self) -> dict[str, Any]:
        return {str(state): n for state, n in self.counts.items()} | {"next_due": self.next_due}


def inbox_host(inbox: str) -> str:
    """The host (with port) an inbox URL lives on; :class:`DeliveryError` if not http(s)."""
    parts = urlsplit(inbox)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"inbox is not an http(s) URL: {inbox!r}")
    return parts.netloc.lower().rsplit("@", 1)[-1]


class DeliveryQueue:
    """The queue in one SQLite file. Open with :meth:`open`; rows left in-flight go back."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.policy = policy
        self._clock = clock
        self._rng = rng
        self._last_sweep = -math.inf

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        recover: bool = True,
    ) -> DeliveryQueue:
        """Open (creating if needed) the queue at ``path`` and recover crashed in-flight rows.

        Only the process that runs the worker may recover; a viewer such as
        ``artdag deliveries`` beside a running daemon must pass ``recover=False``, or it would
        put the daemon's live sends back in the queue.
        """
        conn = open_sqlite(path, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        queue = cls(conn, policy=policy or RetryPolicy(), clock=clock, rng=rng or random.Random())
        if recover:
            queue.recover()
        return queue

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> DeliveryQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def enqueue(self, activity_id: str, inboxes: Iterable[str], body: bytes) -> int:
        """Queue ``body`` for each inbox; pairs already queued are skipped. Returns rows added."""
        if not activity_id:
            raise DeliveryError("enqueue: empty activity id")
        targets = sorted(set(inboxes))
        rows = [(inbox, inbox_host(inbox)) for inbox in targets]
        now = self._clock()
        with self._lock, self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO deliveries (activity_id, inbox, host, body, state, "
                "attempts, next_at, created, updated) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                [
                    (activity_id, inbox, host, body, str(DeliveryState.QUEUED), now, now, now)
                    for inbox, host in rows
                ],
            )
            return self._conn.total_changes - before

    def claim_due(self, now: float, limit: int, per_host_limit: int) -> list[Delivery]:
        """Mark up to ``limit`` due rows in-flight, at most ``per_host_limit`` in flight per host.

        Due rows past the policy's deadline are moved to ``dead`` instead of being claimed.
        Selection and marking happen in one ``BEGIN IMMEDIATE`` transaction.
        """
        if limit <= 0 or per_host_limit <= 0:
            return []
        claimable = _placeholders(len(_CLAIMABLE))
        with self._lock, self._transaction():
            # The expiry sweep reads every pending row: once per _SWEEP_EVERY seconds is enough
            # (a row claimed just past its deadline is declared dead by ``finish`` if it fails).
            if now - self._last_sweep >= _SWEEP_EVERY or now < self._last_sweep:
                self._conn.execute(
                    f"UPDATE deliveries SET state = ?, updated = ?, "
                    f"last_error = COALESCE(last_error || '; ', '') || 'expired' "
                    f"WHERE state IN ({claimable}) AND created + ? <= ?",
                    (str(DeliveryState.DEAD), now, *_CLAIMABLE, self.policy.max_age, now),
                )
                self._last_sweep = now
            ids = [
                row[0]
                for row in self._conn.execute(
                    f"""
                    WITH busy AS (
                        SELECT host, COUNT(*) AS n FROM deliveries
                        WHERE state = ? GROUP BY host
                    ),
                    due AS (
                        SELECT id, host, next_at, ROW_NUMBER() OVER (
                            PARTITION BY host ORDER BY next_at, id
                        ) AS rank
                        FROM deliveries WHERE state IN ({claimable}) AND next_at <= ?
                    )
                    SELECT due.id FROM due LEFT JOIN busy ON busy.host = due.host
                    WHERE due.rank <= ? - COALESCE(busy.n, 0)
                    ORDER BY due.next_at, due.id LIMIT ?
                    """,
                    (str(DeliveryState.IN_FLIGHT), *_CLAIMABLE, now, per_host_limit, limit),
                )
            ]
            if not ids:
                return []
            cursor = self._conn.execute(
                f"UPDATE deliveries SET state = ?, attempts = attempts + 1, updated = ? "
                f"WHERE id IN ({_placeholders(len(ids))}) RETURNING {_COLUMNS}",
                (str(DeliveryState.IN_FLIGHT), now, *ids),
            )
            claimed = [Delivery._from_row(row) for row in cursor.fetchall()]
        return sorted(claimed, key=lambda d: (d.next_at, d.id))

    def finish(self, delivery_id: int, outcome: Outcome, now: float | None = None) -> Delivery:
        """Record the outcome of the attempt on an in-flight row; returns the updated row."""
        now = self._clock() if now is None else now
        with self._lock, self._transaction():
            row = self._get(delivery_id)
            if row.state is not DeliveryState.IN_FLIGHT:
                transition(row.state, DeliveryEvent.SUCCESS)  # raises, naming the state
            decision = decide(
                self.policy,
                outcome,
                attempts=row.attempts,
                created=row.created,
                now=now,
                previous_status=row.last_status,
                rng=self._rng,
            )
            delivered = now if decision.state is DeliveryState.DELIVERED else None
            cursor = self._conn.execute(
                f"UPDATE deliveries SET state = ?, next_at = ?, last_error = ?, last_status = ?, "
                f"updated = ?, delivered_at = ? WHERE id = ? RETURNING {_COLUMNS}",
                (
                    str(decision.state),
                    row.next_at if decision.next_at is None else decision.next_at,
                    decision.error or row.last_error,
                    outcome.status,
                    now,
                    delivered,
                    delivery_id,
                ),
            )
            return Delivery._from_row(cursor.fetchone())

    def release(self, delivery_id: int) -> None:
        """Put an in-flight row back to queued without counting a result (cancelled send)."""
        self._recover(f"id = {int(delivery_id)}")

    def recover(self) -> int:
        """Put every in-flight row back to queued (called on open: their sender died)."""
        return self._recover("1")

    def _recover(self, where: str) -> int:
        state = transition(DeliveryState.IN_FLIGHT, DeliveryEvent.RECOVER)
        now = self._clock()
        with self._lock, self._transaction():
            cursor = self._conn.execute(
                f"UPDATE deliveries SET state = ?, next_at = MIN(next_at, ?), updated = ? "
                f"WHERE state = ? AND {where}",
                (str(state), now, now, str(DeliveryState.IN_FLIGHT)),
            )
            return cursor.rowcount

    # -- reading ---------------------------------------------------------------------------

    def get(self, delivery_id: int) -> Delivery:
        with self._lock:
            return self._get(delivery_id)

    def next_due(self, after: float | None = None) -> float | None:
        """The earliest ``next_at`` of a pending row (strictly after ``after``, if given)."""
        claimable = _placeholders(len(_CLAIMABLE))
        sql = f"SELECT MIN(next_at) FROM deliveries WHERE state IN ({claimable})"
        params: tuple[Any, ...] = _CLAIMABLE
        if after is not None:
            sql += " AND next_at > ?"
            params = (*params, after)
        with self._lock:
            value = self._conn.execute(sql, params).fetchone()[0]
        return None if value is None else float(value)

    def stats(self) -> QueueStats:
        with self._lock:
            counted = dict(
                self._conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            )
        counts = {state: int(counted.get(str(state), 0)) for state in DeliveryState}
        return QueueStats(counts, self.next_due())

    def count_for(self, activity_id: str) -> int:
        """Rows (in any state) that deliver ``activity_id``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE activity_id = ?", (activity_id,)
            ).fetchone()
        return int(row[0])

    def rows(self, state: DeliveryState | str | None = None, limit: int = 100) -> list[Delivery]:
        """Rows newest first, optionally of one state (for ``artdag deliveries``)."""
        sql = f"SELECT {_COLUMNS} FROM deliveries"
        params: tuple[Any, ...] = ()
        if state is not None:
            try:
                state = DeliveryState(state)
            except ValueError:
                raise DeliveryError(f"unknown delivery state: {state!r}") from None
            sql += " WHERE state = ?"
            params = (str(state),)
        sql += " ORDER BY updated DESC, id DESC LIMIT ?"
        with self._lock:
            found = self._conn.execute(sql, (*params, limit)).fetchall()
        return [Delivery._from_row(row) for row in found]

    # -- internals -------------------------------------------------------------------------

    def _get(self, delivery_id: int) -> Delivery:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
        ).fetchone()
        if row is None:
            raise DeliveryError(f"no delivery with id {delivery_id}")
        return Delivery._from_row(row)

    def _transaction(self) -> _Immediate:
        return _Immediate(self._conn)


class _Immediate:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
