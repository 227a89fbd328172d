"""Opening the node's SQLite files the one way every index in artdag uses them.

WAL journaling (readers never block the writer, and a crash loses at most the last
transaction), connections shared between trio's worker threads (each user guards them with its
own lock), and a 30 s busy timeout because the CLI and the daemon may write the same file.

The file is created with mode 0600 before SQLite opens it, and an existing one readable by
others is set to 0600: SQLite creates the ``-wal`` and ``-shm`` files with the database file's
mode (checked with SQLite 3.x here), so all three stay private whatever the process umask.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlite_utils

__all__ = ["open_sqlite", "open_sqlite_utils"]


def _make_private(path: str) -> None:
    """Create the database file 0600 (or take group and other access off an existing one, and
    off its ``-wal`` and ``-shm``); errors are left for SQLite to report.

    An existing file is never opened here, only stat'ed and chmod'ed by name: closing *any*
    descriptor of a file drops every POSIX lock this process holds on it, so another
    connection of this process (the daemon opens index.db several times) would lose its
    locks, and another process's last close would then delete the WAL it still writes to."""
    if path == ":memory:" or path.startswith("file:") or not path:
        return
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return
    for name in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.stat(name).st_mode
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
        except OSError:
            continue


def open_sqlite(path: str | os.PathLike[str], **kwargs: Any) -> sqlite3.Connection:
    """A connection in WAL mode, usable from any thread (``kwargs`` go to ``sqlite3.connect``)."""
    _make_private(os.fspath(path))
    conn = sqlite3.connect(os.fspath(path), check_same_thread=False, timeout=30, **kwargs)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def open_sqlite_utils(path: str | os.PathLike[str]) -> sqlite_utils.Database:
    """The same connection wrapped by sqlite-utils."""
    return sqlite_utils.Database(open_sqlite(path))
