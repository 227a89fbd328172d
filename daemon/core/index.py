"""The SQLite index (via sqlite-utils): what the node knows about its assets and records.

The blocks are the truth; this index only makes them quick to list and search, and every row
names the signed record it came from.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dag.sqlite_db import open_sqlite_utils

__all__ = ["Index", "AssetRow"]


@dataclass(frozen=True)
class AssetRow:
    cid: str
    name: str
    size: int
    mime: str | None
    tags: list[str]
    record: str
    signer: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "name": self.name,
            "size": self.size,
            "mime": self.mime,
            "tags": self.tags,
            "record": self.record,
            "signer": self.signer,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AssetRow:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


class Index:
    def __init__(self, path: Path) -> None:
        self.db = open_sqlite_utils(path)
        self._lock = threading.Lock()
        self.db.table("assets").create(
            {
                "cid": str,
                "name": str,
                "size": int,
                "mime": str,
                "tags": str,
                "record": str,
                "signer": str,
                "created": str,
            },
            pk="cid",
            if_not_exists=True,
        )
        self.db.table("records").create(
            {"cid": str, "type": str, "signer": str, "created": str, "subject": str},
            pk="cid",
            if_not_exists=True,
        )
        self.db.table("records").create_index(["type", "subject"], if_not_exists=True)

    def put_asset(self, row: AssetRow) -> None:
        data = row.to_json() | {"tags": json.dumps(row.tags)}
        with self._lock, self.db.conn:
            self.db.table("assets").upsert(data, pk="cid")

    def add_asset_if_absent(self, row: AssetRow) -> bool:
        """Insert ``row`` unless the CID already has one (whoever signed it); True if inserted.
        One statement, so a row written meanwhile (the owner's own) is never overwritten."""
        data = row.to_json() | {"tags": json.dumps(row.tags)}
        with self._lock, self.db.conn:
            cursor = self.db.conn.execute(
                "insert or ignore into assets (cid, name, size, mime, tags, record, signer, "
                "created) values (:cid, :name, :size, :mime, :tags, :record, :signer, :created)",
                data,
            )
            return cursor.rowcount == 1

    def put_own_asset(self, row: AssetRow) -> None:
        """Index an asset record of ours: its ``records`` row and its ``assets`` row in one
        transaction, so a crash never leaves the record without the row that a repeated add
        looks for (and would then sign a second record for the same bytes)."""
        record = {
            "cid": row.record,
            "type": "asset",
            "signer": row.signer,
            "created": row.created,
            "subject": row.cid,
        }
        asset = row.to_json() | {"tags": json.dumps(row.tags)}
        with self._lock, self.db.conn:  # plain statements: sqlite-utils would commit each
            self.db.conn.execute(
                "insert or replace into records (cid, type, signer, created, subject) "
                "values (:cid, :type, :signer, :created, :subject)",
                record,
            )
            self.db.conn.execute(
                "insert or replace into assets (cid, name, size, mime, tags, record, signer, "
                "created) values (:cid, :name, :size, :mime, :tags, :record, :signer, :created)",
                asset,
            )

    def put_record(self, cid: str, type_: str, signer: str, created: str, subject: str) -> None:
        row = {"cid": cid, "type": type_, "signer": signer, "created": created, "subject": subject}
        with self._lock, self.db.conn:
            self.db.table("records").upsert(row, pk="cid")

    def records_of(self, type_: str, subject: str | None = None) -> list[dict[str, Any]]:
        """Indexed records of one type (optionally about one subject), oldest first."""
        where, args = "type = ?", [type_]
        if subject is not None:
            where, args = where + " and subject = ?", [type_, subject]
        with self._lock:
            return list(self.db.table("records").rows_where(where, args, order_by="created, cid"))

    def record_types(self, cids: list[str]) -> dict[str, str]:
        """CID -> record type, for the indexed records among ``cids``."""
        out: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(cids), 500):
                chunk = cids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self.db.execute(
                    f"select cid, type from records where cid in ({marks})", chunk
                ).fetchall():
                    out[row[0]] = row[1]
        return out

    def asset(self, cid: str) -> AssetRow | None:
        with self._lock:
            rows = list(self.db.table("assets").rows_where("cid = ?", [cid]))
        return _asset(rows[0]) if rows else None

    def assets(self, tag: str | None = None, limit: int = 100, offset: int = 0) -> list[AssetRow]:
        where, args = None, []
        if tag:
            where, args = "exists (select 1 from json_each(assets.tags) where value = ?)", [tag]
        with self._lock:
            rows = self.db.table("assets").rows_where(
                where, args, order_by="created desc, cid", limit=limit, offset=offset
            )
            return [_asset(r) for r in rows]

    def count_assets(self) -> int:
        with self._lock:
            return self.db.table("assets").count

    def close(self) -> None:
        self.db.conn.close()


def _asset(row: dict[str, Any]) -> AssetRow:
    return AssetRow(**(row | {"tags": json.loads(row["tags"] or "[]")}))
