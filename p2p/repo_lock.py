"""One writer at a time for a creator's repo chain, across processes.

``artdag add`` run beside a running daemon appends to the same chain the daemon appends to;
two appends of seq N would fork our own repo. An advisory ``flock`` on ``<p2p.db>.lock`` makes
the read-head/append/write-head step atomic between processes (the in-process trio lock inside
``RepoSync`` only orders tasks of one process). Polling with ``LOCK_NB`` keeps the wait
cancellable without parking a thread.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from dag import CID, Blockstore
from provenance import Identity

from .repo import RepoIndex, RepoSync

__all__ = ["append_to_local_repo", "in_local_repo", "repo_lock"]


@asynccontextmanager
async def repo_lock(db_path: Path, *, poll_s: float = 0.02) -> AsyncIterator[None]:
    fd = os.open(f"{db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await trio.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def append_to_local_repo(
    store: Blockstore, db_path: Path, identity: Identity, record_cid: CID
) -> CID:
    """Append a stored, signed record to our repo without a network (the daemon gossips the
    new head when it sees it)."""

    async def no_fetch(cid: CID) -> bytes:
        return await store.get(cid)

    index = RepoIndex(db_path)
    try:
        sync = RepoSync(store, index, no_fetch, None, identity)
        async with repo_lock(db_path):
            return await sync.append_local(record_cid)
    finally:
        index.db.close()


def in_local_repo(db_path: Path, did: str, record_cid: CID) -> bool:
    """Whether ``record_cid`` is on the chain of repo ``did`` (blocking: run it in a thread)."""
    index = RepoIndex(db_path)
    try:
        return index.has_record(did, record_cid)
    finally:
        index.db.close()
