"""The SQLite store of Pinning Service requests (``pinning.db``).

Blocking (sqlite via :func:`dag.sqlite_db.open_sqlite`), guarded by a lock; the worker
(:mod:`daemon.core.pinning_api.worker`) calls it from worker threads. What a request holds and
the checks of what clients send are in :mod:`daemon.core.pinning_api.requests`.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from daemon.core.pinning_api.requests import (
    STATUSES,
    ListQuery,
    PendingLimitReached,
    PinRequest,
    PinSpec,
)
from daemon.core.pinning_api.requests import now_ms as current_ms
from dag.sqlite_db import open_sqlite

__all__ = ["PinRequestStore", "new_requestid"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pin_requests (
    requestid TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    cid TEXT NOT NULL,
    cid_key TEXT NOT NULL,
    name TEXT,
    origins TEXT NOT NULL DEFAULT '[]',
    meta TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL UNIQUE,
    info TEXT NOT NULL DEFAULT '{}',
    releases TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS pin_requests_owner_created ON pin_requests (owner, created_ms);
CREATE INDEX IF NOT EXISTS pin_requests_cid_key ON pin_requests (cid_key);
CREATE INDEX IF NOT EXISTS pin_requests_status ON pin_requests (status, created_ms);
"""

_COLUMNS = "requestid, owner, cid, name, origins, meta, status, created_ms, info, releases"


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


def new_requestid() -> str:
    """Random and url-safe (128 bits), so request ids cannot be guessed or collide."""
    return secrets.token_urlsafe(16)


class PinRequestStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._conn = open_sqlite(path)
        self._conn.create_function("casefold", 1, _casefold, deterministic=True)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _row(row: tuple[Any, ...]) -> PinRequest:
        requestid, owner, cid, name, origins, meta, status, created_ms, info, releases = row
        return PinRequest(
            requestid=requestid,
            pin=PinSpec(
                cid=cid, name=name, origins=tuple(json.loads(origins)), meta=json.loads(meta)
            ),
            status=status,
            created_ms=created_ms,
            owner=owner,
            info=json.loads(info),
            releases=tuple(json.loads(releases)),
        )

    def add(
        self,
        pin: PinSpec,
        *,
        owner: str,
        releases: Sequence[str] = (),
        now_ms: int | None = None,
        max_pending: int | None = None,
        replacing: str | None = None,
    ) -> PinRequest:
        """Store a new ``queued`` request. ``created`` is unique across the store (a later
        request made in the same millisecond gets the next one), as pagination needs.

        With ``max_pending``, :class:`PendingLimitReached` if ``owner`` already has that many
        requests queued or pinning (not counting ``replacing``, the request this one takes
        the place of); the count and the insert are one transaction."""
        with self._lock, self._conn:
            if max_pending is not None:
                (pending,) = self._conn.execute(
                    "SELECT COUNT(*) FROM pin_requests WHERE owner = ?"
                    " AND status IN ('queued', 'pinning') AND requestid != ?",
                    (owner, replacing or ""),
                ).fetchone()
                if pending >= max_pending:
                    raise PendingLimitReached(owner, pending, max_pending)
            (last,) = self._conn.execute("SELECT MAX(created_ms) FROM pin_requests").fetchone()
            created = now_ms if now_ms is not None else current_ms()
            if last is not None and created <= last:
                created = last + 1
            request = PinRequest(
                requestid=new_requestid(),
                pin=pin,
                status="queued",
                created_ms=created,
                owner=owner,
                releases=tuple(dict.fromkeys(releases)),
            )
            self._conn.execute(
                "INSERT INTO pin_requests (requestid, owner, cid, cid_key, name, origins, meta,"
                " status, created_ms, info, releases) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    request.requestid,
                    owner,
                    pin.cid,
                    pin.key,
                    pin.name,
                    json.dumps(list(pin.origins)),
                    json.dumps(pin.meta),
                    "queued",
                    created,
                    "{}",
                    json.dumps(list(request.releases)),
                ),
            )
        return request

    def get(self, requestid: str, owner: str | None = None) -> PinRequest | None:
        sql = f"SELECT {_COLUMNS} FROM pin_requests WHERE requestid = ?"
        params: list[Any] = [requestid]
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return None if row is None else self._row(row)

    def set_status(
        self, requestid: str, status: str, info: Mapping[str, str] | None = None
    ) -> bool:
        """Move a request to ``status`` (False if it no longer exists)."""
        if status not in STATUSES:
            raise ValueError(f"unknown pin request status {status!r}")
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "UPDATE pin_requests SET status = ?, info = ? WHERE requestid = ?",
                (status, json.dumps(dict(info or {})), requestid),
            )
        return cursor.rowcount == 1

    def clear_releases(self, requestid: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE pin_requests SET releases = '[]' WHERE requestid = ?", (requestid,)
            )

    def delete(self, requestid: str) -> PinRequest | None:
        """Remove a request; returns what it was (None if there was none)."""
        with self._lock, self._conn:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM pin_requests WHERE requestid = ?", (requestid,)
            ).fetchone()
            if row is None:
                return None
            self._conn.execute("DELETE FROM pin_requests WHERE requestid = ?", (requestid,))
        return self._row(row)

    def still_wanted(self, cid_key: str) -> bool:
        """Whether some request still needs ``cid_key`` pinned: one not failed, or one whose
        settling is to release it (a replacement in progress)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM pin_requests WHERE cid_key = ? AND status != 'failed'"
                " UNION ALL SELECT 1 FROM pin_requests AS r, json_each(r.releases) AS j"
                " WHERE j.value = ? LIMIT 1",
                (cid_key, cid_key),
            ).fetchone()
        return row is not None

    def requeue_interrupted(self) -> int:
        """``pinning`` back to ``queued`` (the daemon stopped during the fetch)."""
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "UPDATE pin_requests SET status = 'queued', info = '{}' WHERE status = 'pinning'"
            )
        return cursor.rowcount

    def queued(self, limit: int = 100, exclude: Sequence[str] = ()) -> list[PinRequest]:
        """Queued requests, oldest first."""
        marks = ",".join("?" * len(exclude))
        sql = f"SELECT {_COLUMNS} FROM pin_requests WHERE status = 'queued'"
        if exclude:
            sql += f" AND requestid NOT IN ({marks})"
        sql += " ORDER BY created_ms LIMIT ?"
        with self._lock:
            rows = self._conn.execute(sql, [*exclude, limit]).fetchall()
        return [self._row(r) for r in rows]

    def queued_heads(self, per_owner: int, exclude: Sequence[str] = ()) -> list[PinRequest]:
        """The ``per_owner`` oldest queued requests of every token (not those in ``exclude``),
        oldest first: what the fair scheduler (:mod:`daemon.core.pinning_api.schedule`) chooses
        from,
        however many requests one token has queued."""
        marks = ",".join("?" * len(exclude))
        inner = f"SELECT {_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY owner ORDER BY created_ms)"
        inner += " AS position FROM pin_requests WHERE status = 'queued'"
        if exclude:
            inner += f" AND requestid NOT IN ({marks})"
        sql = f"SELECT {_COLUMNS} FROM ({inner}) WHERE position <= ? ORDER BY created_ms"
        with self._lock:
            rows = self._conn.execute(sql, [*exclude, per_owner]).fetchall()
        return [self._row(r) for r in rows]

    def list(self, query: ListQuery, owner: str | None = None) -> tuple[int, list[PinRequest]]:
        """(how many match, the newest ``query.limit`` of them, newest first)."""
        where: list[str] = []
        params: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if query.cids:
            where.append(f"cid_key IN ({','.join('?' * len(query.cids))})")
            params.extend(query.cids)
        if query.name is not None:
            where.append(
                {
                    "exact": "name = ?",
                    "iexact": "casefold(name) = casefold(?)",
                    "partial": "instr(name, ?) > 0",
                    "ipartial": "instr(casefold(name), casefold(?)) > 0",
                }[query.match]
            )
            params.append(query.name)
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(query.statuses)
        if query.before_ms is not None:
            where.append("created_ms < ?")
            params.append(query.before_ms)
        if query.after_ms is not None:
            where.append("created_ms > ?")
            params.append(query.after_ms)
        for key, value in query.meta.items():
            where.append(
                "EXISTS (SELECT 1 FROM json_each(pin_requests.meta) AS m"
                " WHERE m.key = ? AND m.value = ?)"
            )
            params.extend([key, value])
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            (count,) = self._conn.execute(
                f"SELECT COUNT(*) FROM pin_requests{clause}", params
            ).fetchone()
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM pin_requests{clause} ORDER BY created_ms DESC LIMIT ?",
                [*params, query.limit],
            ).fetchall()
        return count, [self._row(r) for r in rows]
