"""The money service's SQLite side: the ``usage`` and ``statements`` tables (in the node's
index file, on their own connection), and read-only lookups in the index's ``records`` and
``assets`` and the renderer's ``render_outputs``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["USAGE_KINDS", "MoneyDb"]

USAGE_KINDS = ("view", "listen", "like", "boost")


class MoneyDb:
    """The ``usage`` and ``statements`` tables (own connection to the node's index file), and
    read-only lookups in the index's ``records``/``assets`` and the render ``render_outputs``."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock, self.conn:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS usage (cid TEXT PRIMARY KEY, subject TEXT NOT NULL,"
                " kind TEXT NOT NULL, count INTEGER NOT NULL, epoch TEXT NOT NULL,"
                " listener TEXT, signer TEXT NOT NULL, created TEXT NOT NULL)"
            )
            self.conn.execute("CREATE INDEX IF NOT EXISTS usage_epoch ON usage (epoch, kind)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS statements (cid TEXT PRIMARY KEY, epoch TEXT NOT NULL,"
                " policy TEXT NOT NULL, currency TEXT NOT NULL, pool INTEGER NOT NULL,"
                " count INTEGER NOT NULL, lines TEXT NOT NULL, created TEXT NOT NULL)"
            )

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            try:
                return list(self.conn.execute(sql, args))
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # e.g. nothing rendered yet
                    return []
                raise

    def put_usage(self, row: Mapping[str, Any]) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO usage VALUES"
                " (:cid, :subject, :kind, :count, :epoch, :listener, :signer, :created)",
                dict(row),
            )

    def put_statement(self, row: Mapping[str, Any]) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO statements VALUES"
                " (:cid, :epoch, :policy, :currency, :pool, :count, :lines, :created)",
                dict(row),
            )

    @staticmethod
    def _epoch_clause() -> str:
        return "(epoch = ? OR epoch LIKE ? || '-%')"

    def counts(self, epoch: str, kinds: Sequence[str] | None = None) -> dict[str, int]:
        kinds = list(kinds or USAGE_KINDS)
        marks = ",".join("?" * len(kinds))
        rows = self._query(
            f"SELECT subject, SUM(count) AS n FROM usage WHERE {self._epoch_clause()}"
            f" AND kind IN ({marks}) GROUP BY subject ORDER BY subject",
            [epoch, epoch, *kinds],
        )
        return {r["subject"]: int(r["n"]) for r in rows}

    def listens(self, epoch: str) -> dict[str, dict[str, int]]:
        rows = self._query(
            "SELECT listener, subject, SUM(count) AS n FROM usage WHERE"
            f" {self._epoch_clause()} AND kind = 'listen' AND listener IS NOT NULL"
            " GROUP BY listener, subject ORDER BY listener, subject",
            [epoch, epoch],
        )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["listener"], {})[r["subject"]] = int(r["n"])
        return out

    def statements(self, epoch: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE epoch = ?", [epoch]) if epoch else ("", [])
        rows = self._query(f"SELECT * FROM statements {where} ORDER BY created, cid", args)
        return [dict(r) for r in rows]

    def record_cids(self, type_: str, subject: str) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT cid, created FROM records WHERE type = ? AND subject = ? ORDER BY created, cid",
            [type_, subject],
        )
        return [(r["cid"], r["created"]) for r in rows]

    def render_provenance(self, output: str) -> str | None:
        rows = self._query("SELECT provenance FROM render_outputs WHERE output = ?", [output])
        return rows[0]["provenance"] if rows else None

    def asset_signer(self, cid: str) -> str | None:
        rows = self._query("SELECT signer FROM assets WHERE cid = ?", [cid])
        return rows[0]["signer"] if rows else None

    def close(self) -> None:
        self.conn.close()
