"""What the bridge has said and heard: the activities local creators emitted, and the ids of
inbound activities already processed.

Every id the bridge emits must be dereferenceable (Fedify and Mastodon fetch ids they are
given), so each emitted activity is stored here before it is queued for delivery, and the
objects embedded in it (a Create's Note) are stored under their own ids. ``listed`` activities
(Creates) make up the creator's outbox, newest first; Accepts are served but not listed.

Inbound ids: receivers must de-duplicate (senders retry, and a crash can resend), so a Like
delivered twice counts once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dag.sqlite_db import open_sqlite

__all__ = ["ActivityStore", "ActivityStoreError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS activities (
    id TEXT PRIMARY KEY,
    creator TEXT NOT NULL,
    type TEXT NOT NULL,
    listed INTEGER NOT NULL,
    cid TEXT,
    json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS activities_outbox ON activities (creator, listed, created);
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    activity TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inbound (
    id TEXT PRIMARY KEY,
    received REAL NOT NULL
);
"""


class ActivityStoreError(ValueError):
    """An activity without the fields the store needs."""


class ActivityStore:
    """SQLite (WAL, safe across the trio thread pool); every method is a short transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ActivityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(
        self,
        activity: Mapping[str, Any],
        creator: str,
        *,
        listed: bool,
        cid: str | None = None,
        at: float | None = None,
    ) -> bool:
        """Store an emitted activity (and its embedded object); False if its id was stored."""
        activity_id = activity.get("id")
        kind = activity.get("type")
        if not isinstance(activity_id, str) or not isinstance(kind, str):
            raise ActivityStoreError("an emitted activity needs a string id and type")
        obj = activity.get("object")
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO activities (id, creator, type, listed, cid, json, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    activity_id,
                    creator,
                    kind,
                    int(listed),
                    cid,
                    json.dumps(activity, sort_keys=True),
                    time.time() if at is None else at,
                ),
            )
            if cursor.rowcount == 0:
                return False
            if isinstance(obj, Mapping) and isinstance(obj.get("id"), str) and kind == "Create":
                context = activity.get("@context")
                document = {"@context": context, **obj} if context else dict(obj)
                self._db.execute(
                    "INSERT OR IGNORE INTO objects (id, activity, json) VALUES (?, ?, ?)",
                    (obj["id"], activity_id, json.dumps(document, sort_keys=True)),
                )
            return True

    def activity(self, activity_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT json FROM activities WHERE id = ?", (activity_id,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def object(self, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT json FROM objects WHERE id = ?", (object_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def outbox(self, creator: str, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Listed activities of ``creator``, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT json FROM activities WHERE creator = ? AND listed = 1"
                " ORDER BY created DESC, id LIMIT ? OFFSET ?",
                (creator, limit, offset),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def outbox_count(self, creator: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM activities WHERE creator = ? AND listed = 1", (creator,)
            ).fetchone()
        return int(row[0])

    def published(self, creator: str, cid: str) -> str | None:
        """The id of the Create that published ``cid``, if it was published."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM activities WHERE creator = ? AND cid = ? AND type = 'Create'",
                (creator, cid),
            ).fetchone()
        return None if row is None else str(row[0])

    def seen(self, activity_id: str) -> bool:
        """Whether an inbound activity with this id was processed already."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM inbound WHERE id = ?", (activity_id,)).fetchone()
        return row is not None

    def mark_seen(self, activity_id: str, at: float | None = None) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO inbound (id, received) VALUES (?, ?)",
                (activity_id, time.time() if at is None else at),
            )
