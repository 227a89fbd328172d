"""The anchoring service's two tables in the node's index database: ``anchors`` (one row per
anchor record: root, leaves, calendars, the ``.ots`` proof, status and Bitcoin block) and
``anchor_leaves`` (record CID -> the anchors holding it), and :class:`AnchorRow`, one anchor as
the service and the node API hand it out."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dag.sqlite_db import open_sqlite_utils

__all__ = ["AnchorRow", "AnchorTables", "anchor_row"]


@dataclass(frozen=True)
class AnchorRow:
    record: str  # CID of the signed anchor record
    root: str  # hex
    leaves: list[str]
    calendars: list[str]
    status: str  # pending | complete | verified
    block_height: int | None
    block_time: int | None
    block_hash: str | None
    ots_path: str
    created: str
    upgraded: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> AnchorRow:
        return cls(**{name: value[name] for name in cls.__dataclass_fields__})


def anchor_row(data: dict[str, Any]) -> AnchorRow:
    """An :class:`AnchorRow` from a row of the ``anchors`` table."""
    return AnchorRow(
        record=data["record"],
        root=data["root"],
        leaves=json.loads(data["leaves"]),
        calendars=json.loads(data["calendars"]),
        status=data["status"],
        block_height=data["block_height"],
        block_time=data["block_time"],
        block_hash=data["block_hash"],
        ots_path=data["ots_path"],
        created=data["created"],
        upgraded=data["upgraded"],
    )


class AnchorTables:
    """The ``anchors`` and ``anchor_leaves`` tables (blocking; call from a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.db = open_sqlite_utils(path)
        self.lock = threading.Lock()
        self.db.table("anchors").create(
            {
                "record": str,
                "root": str,
                "leaves": str,
                "calendars": str,
                "ots": bytes,
                "ots_path": str,
                "status": str,
                "block_height": int,
                "block_time": int,
                "block_hash": str,
                "created": str,
                "upgraded": str,
            },
            pk="record",
            if_not_exists=True,
        )
        self.db.table("anchor_leaves").create(
            {"cid": str, "record": str, "root": str, "idx": int},
            pk=("cid", "record"),
            if_not_exists=True,
        )

    def insert(self, row: dict[str, Any], leaves: list[str]) -> None:
        with self.lock, self.db.conn:
            self.db.table("anchors").insert(row)
            self.db.table("anchor_leaves").insert_all(
                {"cid": c, "record": row["record"], "root": row["root"], "idx": i}
                for i, c in enumerate(leaves)
            )

    def update(self, record: str, values: dict[str, Any]) -> None:
        with self.lock, self.db.conn:
            self.db.table("anchors").update(record, values)

    def rows(self, where: str | None = None, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.db.table("anchors").rows_where(where, args, order_by="created"))

    def of_leaf(self, cid: str) -> list[dict[str, Any]]:
        where = "record in (select record from anchor_leaves where cid = ?) or record = ?"
        return self.rows(where, [cid, cid])

    def anchored(self, cids: list[str]) -> set[str]:
        with self.lock:
            marks = ",".join("?" * len(cids))
            sql = f"select distinct cid from anchor_leaves where cid in ({marks})"
            return {r[0] for r in self.db.execute(sql, cids).fetchall()}

    def close(self) -> None:
        self.db.conn.close()
