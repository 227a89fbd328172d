"""The step cache: cache id -> output CID (+ receipt, content key), and output -> provenance.

Kept in SQLite through sqlite-utils, in the node's index database (its own tables). The blocks
are the truth: a row is only a shortcut to a signed receipt in the store, and a row whose output
is gone from the store is treated as a miss by the executor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from dag.sqlite_db import open_sqlite_utils

__all__ = ["CachedStep", "StepCache"]


@dataclass(frozen=True)
class CachedStep:
    cache_id: str
    output: str
    receipt: str
    content_key: str
    kind: str  # media | beats
    duration: float | None = None  # logical duration (what later steps compute with)


class StepCache:
    def __init__(self, path: Path | str) -> None:
        self.db = open_sqlite_utils(path)
        self._lock = threading.Lock()
        self.db.table("render_steps").create(
            {
                "cache_id": str,
                "output": str,
                "receipt": str,
                "content_key": str,
                "kind": str,
                "duration": float,
            },
            pk="cache_id",
            if_not_exists=True,
        )
        self.db.table("render_outputs").create(
            {"output": str, "provenance": str, "recipe": str, "created": str},
            pk="output",
            if_not_exists=True,
        )

    def get(self, cache_id: str) -> CachedStep | None:
        with self._lock:
            rows = list(self.db.table("render_steps").rows_where("cache_id = ?", [cache_id]))
        return CachedStep(**rows[0]) if rows else None

    def get_many(self, cache_ids: list[str]) -> dict[str, CachedStep]:
        return {c: hit for c in cache_ids if (hit := self.get(c)) is not None}

    def put(self, entry: CachedStep) -> None:
        with self._lock, self.db.conn:
            self.db.table("render_steps").upsert(entry.__dict__, pk="cache_id")

    def forget(self, cache_id: str) -> None:
        with self._lock, self.db.conn:
            self.db.execute("delete from render_steps where cache_id = ?", [cache_id])

    def put_output(self, output: str, provenance: str, recipe: str, created: str) -> None:
        row = {"output": output, "provenance": provenance, "recipe": recipe, "created": created}
        with self._lock, self.db.conn:
            self.db.table("render_outputs").upsert(row, pk="output")

    def provenance_of(self, output: str) -> str | None:
        with self._lock:
            rows = list(self.db.table("render_outputs").rows_where("output = ?", [output]))
        return rows[0]["provenance"] if rows else None

    def close(self) -> None:
        self.db.conn.close()
