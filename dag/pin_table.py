"""Why each pin exists: one SQLite row per (CID, reason).

A CID may be pinned for several reasons at once (added on this node *and* popular); it stays
pinned while any reason remains, so a policy that drops its own reason never removes a pin
someone else asked for. The reasons:

- ``local``: made or added on this node (imports, renders, records); the default.
- ``explicit``: the operator asked (``artdag pin add``, the settings page).
- ``followed``: a followed creator's repo head.
- ``popular``: among the N most used works.
- ``remote``: a client of the Pinning Service API asked.

``local`` and ``explicit`` are never removed by a policy; the others are *policy pins*.
The table's methods are blocking and guarded by a lock; stores call them from worker threads.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from .cids import parse_cid
from .errors import StoreError
from .pin import Pin
from .sqlite_db import open_sqlite

__all__ = [
    "PIN_REASONS",
    "POLICY_REASONS",
    "PinRow",
    "PinTable",
    "check_reason",
    "pins_from_rows",
]

PIN_REASONS = ("local", "explicit", "followed", "popular", "remote")
POLICY_REASONS = frozenset({"followed", "popular", "remote"})


def check_reason(reason: str) -> str:
    if reason not in PIN_REASONS:
        raise StoreError(f"unknown pin reason {reason!r} (one of {', '.join(PIN_REASONS)})")
    return reason


@dataclass(frozen=True, slots=True)
class PinRow:
    cid: str
    reason: str
    recursive: bool
    created: str


class PinTable:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._conn = open_sqlite(path)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute(
                "create table if not exists pin_reasons (cid text not null, reason text not null,"
                " recursive integer not null, created text not null, primary key (cid, reason))"
            )
            old = self._conn.execute(
                "select 1 from sqlite_master where type = 'table' and name = 'pins'"
            ).fetchone()
            if old:  # the one-reason table of earlier versions: every pin was a local one
                self._conn.execute(
                    "insert or ignore into pin_reasons select cid, 'local', recursive, created"
                    " from pins"
                )
                self._conn.execute("drop table pins")

    def add(self, cid: str, reason: str, recursive: bool) -> bool:
        """Record the pin; True if the CID had no pin before."""
        check_reason(reason)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock, self._conn:
            had = self._conn.execute("select 1 from pin_reasons where cid = ?", [cid]).fetchone()
            self._conn.execute(
                "insert into pin_reasons values (?, ?, ?, ?) on conflict (cid, reason)"
                " do update set recursive = excluded.recursive",
                [cid, reason, int(recursive), created],
            )
        return had is None

    def remove(self, cid: str, reason: str | None) -> bool:
        """Drop one reason (or every reason with None); True if the CID has no pin left."""
        if reason is not None:
            check_reason(reason)
        with self._lock, self._conn:
            if reason is None:
                self._conn.execute("delete from pin_reasons where cid = ?", [cid])
            else:
                self._conn.execute(
                    "delete from pin_reasons where cid = ? and reason = ?", [cid, reason]
                )
            left = self._conn.execute("select 1 from pin_reasons where cid = ?", [cid]).fetchone()
        return left is None

    def rows(self) -> list[PinRow]:
        with self._lock:
            found = self._conn.execute(
                "select cid, reason, recursive, created from pin_reasons order by created, cid,"
                " reason"
            ).fetchall()
        return [PinRow(c, r, bool(rec), created) for c, r, rec, created in found]

    def reasons(self, cid: str) -> set[str]:
        with self._lock:
            found = self._conn.execute(
                "select reason from pin_reasons where cid = ?", [cid]
            ).fetchall()
        return {r for (r,) in found}

    def recursive(self, cid: str) -> bool | None:
        """Whether any reason pins ``cid`` recursively (None: not pinned)."""
        with self._lock:
            row = self._conn.execute(
                "select max(recursive) from pin_reasons where cid = ?", [cid]
            ).fetchone()
        return None if row is None or row[0] is None else bool(row[0])

    def close(self) -> None:
        self._conn.close()


def pins_from_rows(rows: list[PinRow]) -> list[Pin]:
    """One Pin per CID (in the order of its oldest reason), its reasons gathered."""
    by_cid: dict[str, list[PinRow]] = {}
    for row in rows:
        by_cid.setdefault(row.cid, []).append(row)
    return [
        Pin(
            parse_cid(cid),
            any(r.recursive for r in group),
            tuple(sorted({r.reason for r in group})),
        )
        for cid, group in by_cid.items()
    ]
