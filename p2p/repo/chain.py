"""Creator repo chains: building commits and verifying a segment of a chain (pure).

A creator's repo is a chain of ``commit`` records, each signed by the creator (``repo`` ==
``signer``), numbered ``seq`` 0, 1, 2, ... and linking the previous commit by CID (``prev``,
absent at seq 0). The newest commit is the repo's head. Anyone holding the blocks can verify
the chain without trusting whoever served them: block bytes are checked against their CIDs by
the fetch layer, and this module checks everything else.

A *fork* is two different commits at the same seq of one repo, both validly signed: the owner
(or a thief of the owner's key) equivocated. We keep the first chain we accepted and refuse the
other with :class:`ForkDetected`.

This lives beside the sync service rather than in ``provenance/`` because only repo sync uses
it and it needs nothing from provenance but its public API (sign, verify, record_cid).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from multiformats import CID

from provenance import (
    Identity,
    ProvenanceError,
    record_cid,
    sign_record,
    utc_timestamp,
    verify_signed,
)

from ..errors import P2PError

__all__ = [
    "ChainHead",
    "ChainInvalid",
    "ForkDetected",
    "RepoError",
    "append",
    "check_known_head",
    "verify_commit",
    "verify_segment",
]


class RepoError(P2PError):
    """A creator repo could not be synced or extended."""


class ChainInvalid(RepoError):
    """A commit or a chain segment is malformed, wrongly signed or wrongly linked."""


class ForkDetected(ChainInvalid):
    """A repo has two different validly signed commits at the same seq."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    seq: int
    cid: CID


def _short(cid: CID) -> str:
    return cid.encode("base32")


def append(identity: Identity, head: dict[str, Any] | None, record: CID) -> dict[str, Any]:
    """The signed commit that appends ``record`` to ``identity``'s repo after ``head``."""
    commit: dict[str, Any] = {
        "type": "commit",
        "version": 1,
        "repo": identity.did,
        "seq": 0,
        "record": record,
        "created": utc_timestamp(),
    }
    if head is not None:
        if head.get("repo") != identity.did:
            raise RepoError(f"head belongs to repo {head.get('repo')}, not {identity.did}")
        commit["seq"] = head["seq"] + 1
        commit["prev"] = record_cid(head)
    return sign_record(commit, identity)


def verify_commit(commit: Any, repo: str) -> None:
    """One commit on its own: schema, signature, owned by ``repo``, ``prev`` iff seq > 0."""
    try:
        verify_signed(commit)
    except ProvenanceError as exc:
        raise ChainInvalid(f"repo {repo}: bad commit: {exc}") from None
    if commit["type"] != "commit":
        raise ChainInvalid(f"repo {repo}: expected a commit, got a {commit['type']!r} record")
    if commit["repo"] != repo or commit["signer"] != repo:
        raise ChainInvalid(
            f"repo {repo}: commit {commit['seq']} names repo {commit['repo']} "
            f"and is signed by {commit['signer']}"
        )
    if (commit["seq"] == 0) != ("prev" not in commit):
        raise ChainInvalid(f"repo {repo}: commit {commit['seq']} must link prev iff seq > 0")


def check_known_head(repo: str, seq: int, head: CID, known_at: Callable[[int], CID | None]) -> bool:
    """For a head no newer than what we hold: True if it is ours, ForkDetected if it is not."""
    ours = known_at(seq)
    if ours is None:
        raise ChainInvalid(f"repo {repo}: no commit known at seq {seq}")
    if ours != head:
        raise ForkDetected(
            f"repo {repo}: fork at seq {seq}: offered {_short(head)}, we hold {_short(ours)}"
        )
    return True


def verify_segment(
    repo: str,
    commits: Sequence[tuple[CID, dict[str, Any]]],
    known: ChainHead | None,
) -> list[tuple[CID, dict[str, Any]]]:
    """Check commits from a new head back to just after ``known``; return them oldest first.

    ``commits`` is newest first, each with the CID its bytes were verified against. The oldest
    must extend ``known`` (or start the repo at seq 0 if we know nothing of it); a segment that
    links to a different commit at ``known.seq`` is a fork.
    """
    if not commits:
        raise ChainInvalid(f"repo {repo}: empty chain segment")
    for cid, commit in commits:
        verify_commit(commit, repo)
        if record_cid(commit) != cid:
            raise ChainInvalid(f"repo {repo}: commit {_short(cid)} does not match its CID")
    for (_, newer), (older_cid, older) in itertools.pairwise(commits):
        if newer["seq"] != older["seq"] + 1 or newer["prev"] != older_cid:
            raise ChainInvalid(
                f"repo {repo}: commit {newer['seq']} does not link commit {older['seq']}"
            )
    _, oldest = commits[-1]
    if known is None:
        if oldest["seq"] != 0:
            raise ChainInvalid(f"repo {repo}: segment starts at seq {oldest['seq']}, not 0")
    elif oldest["seq"] != known.seq + 1:
        raise ChainInvalid(
            f"repo {repo}: segment starts at seq {oldest['seq']}, expected {known.seq + 1}"
        )
    elif oldest["prev"] != known.cid:
        raise ForkDetected(
            f"repo {repo}: fork at seq {known.seq}: new commits build on "
            f"{_short(oldest['prev'])}, we hold {_short(known.cid)}"
        )
    return list(reversed(commits))
