"""Opening the node's SQLite files the one way every index in artdag uses them.

WAL journaling (readers never block the writer, and a crash loses at most the last
transaction), connections shared between trio's worker threads (each user guards them with its
own lock), and a 30 s busy timeout because the CLI and the daemon may write the same file.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlite_utils

__all__ = ["open_sqlite", "open_sqlite_utils"]


def open_sqlite(path: str | os.PathLike[str], **kwargs: Any) -> sqlite3.Connection:
    """A connection in WAL mode, usable from any thread (``kwargs`` go to ``sqlite3.connect``)."""
    conn = sqlite3.connect(os.fspath(path), check_same_thread=False, timeout=30, **kwargs)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def open_sqlite_utils(path: str | os.PathLike[str]) -> sqlite_utils.Database:
    """The same connection wrapped by sqlite-utils."""
    return sqlite_utils.Database(open_sqlite(path))
