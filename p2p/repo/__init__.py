"""Creator repos: signed append-only chains of commits, their index, and sync between peers."""

from __future__ import annotations

from .chain import (
    ChainHead,
    ChainInvalid,
    ForkDetected,
    RepoError,
    append,
    check_known_head,
    verify_commit,
    verify_segment,
)
from .heads_protocol import HEADS_PROTOCOL
from .index import HeadRow, RepoIndex
from .sync import FetchBlock, OnRecord, RepoSync

__all__ = [
    "HEADS_PROTOCOL",
    "ChainHead",
    "ChainInvalid",
    "FetchBlock",
    "ForkDetected",
    "HeadRow",
    "OnRecord",
    "RepoError",
    "RepoIndex",
    "RepoSync",
    "append",
    "check_known_head",
    "verify_commit",
    "verify_segment",
]
