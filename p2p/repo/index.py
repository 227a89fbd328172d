"""Where each known creator repo stands, and the records indexed from the chains (SQLite).

Two tables, made with sqlite-utils in the daemon's database (or a file of their own):

- ``repo_heads``: one row per repo (``did``): ``seq``, ``head`` (commit CID), ``updated``, and
  ``message``, the DAG-CBOR bytes of the signed head message we hold for it, which we hand to
  peers during the heads exchange.
- ``repo_records``: one row per commit (``repo``, ``seq``): ``commit``, ``record`` (CID), and
  the record's ``type``, ``signer`` and ``created``.

The methods are blocking; :class:`~p2p.repo.sync.RepoSync` calls them from a worker thread,
so the connection is opened with ``check_same_thread=False`` and guarded by a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from multiformats import CID

from dag import parse_cid
from dag.sqlite_db import open_sqlite_utils
from provenance import utc_timestamp

from .chain import ChainHead

__all__ = ["HeadRow", "RepoIndex"]


@dataclass(frozen=True, slots=True)
class HeadRow:
    repo: str
    seq: int
    head: CID
    updated: str
    message: bytes | None


class RepoIndex:
    def __init__(self, db: sqlite_utils.Database | str | Path) -> None:
        if not isinstance(db, sqlite_utils.Database):
            db = open_sqlite_utils(db)
        self.db = db
        self._lock = threading.Lock()
        with self._lock:
            db.table("repo_heads").create(
                {"did": str, "seq": int, "head": str, "updated": str, "message": bytes},
                pk="did",
                if_not_exists=True,
            )
            db.table("repo_records").create(
                {
                    "repo": str,
                    "seq": int,
                    "commit": str,
                    "record": str,
                    "type": str,
                    "signer": str,
                    "created": str,
                },
                pk=("repo", "seq"),
                if_not_exists=True,
            )
            db.table("repo_records").create_index(["record"], if_not_exists=True)

    def head(self, repo: str) -> HeadRow | None:
        with self._lock:
            rows = list(self.db.query("select * from repo_heads where did = ?", [repo]))
        if not rows:
            return None
        row = rows[0]
        return HeadRow(repo, row["seq"], parse_cid(row["head"]), row["updated"], row["message"])

    def chain_head(self, repo: str) -> ChainHead | None:
        row = self.head(repo)
        return None if row is None else ChainHead(row.seq, row.head)

    def heads(self) -> list[HeadRow]:
        with self._lock:
            rows = list(self.db.query("select * from repo_heads order by did"))
        return [
            HeadRow(r["did"], r["seq"], parse_cid(r["head"]), r["updated"], r["message"])
            for r in rows
        ]

    def chain_blocks(self) -> list[CID]:
        """Every commit and record block of every known repo (what a garbage collector keeps
        of the repos, without what their records link to)."""
        with self._lock:
            rows = self.db.execute("select [commit], record from repo_records").fetchall()
        return [parse_cid(c) for row in rows for c in row]

    def commit_at(self, repo: str, seq: int) -> CID | None:
        with self._lock:
            rows = list(
                self.db.query(
                    "select [commit] from repo_records where repo = ? and seq = ?", [repo, seq]
                )
            )
        return parse_cid(rows[0]["commit"]) if rows else None

    def add_commit(self, commit_cid: CID, commit: dict[str, Any], record: dict[str, Any]) -> None:
        row = {
            "repo": commit["repo"],
            "seq": commit["seq"],
            "commit": commit_cid.encode("base32"),
            "record": commit["record"].encode("base32"),
            "type": record.get("type"),
            "signer": record.get("signer"),
            "created": record.get("created"),
        }
        with self._lock:
            self.db.table("repo_records").upsert(row, pk=("repo", "seq"))

    def has_record(self, repo: str, record: CID) -> bool:
        """Whether ``record`` is on ``repo``'s chain (at or below its head: a commit row above
        the head is one whose head update a crash cut off, and the next append replaces it)."""
        with self._lock:
            row = self.db.execute(
                "select 1 from repo_records r join repo_heads h on h.did = r.repo "
                "where r.repo = ? and r.record = ? and r.seq <= h.seq limit 1",
                [repo, record.encode("base32")],
            ).fetchone()
        return row is not None

    def set_head(self, repo: str, seq: int, head: CID, message: bytes | None) -> None:
        row = {
            "did": repo,
            "seq": seq,
            "head": head.encode("base32"),
            "updated": utc_timestamp(),
            "message": message,
        }
        with self._lock:
            self.db.table("repo_heads").upsert(row, pk="did")

    def records(self, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(
                self.db.query("select * from repo_records where repo = ? order by seq", [repo])
            )
