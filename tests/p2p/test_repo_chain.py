"""Creator repo chains: building and verifying commits, forks, wrong signers (pure)."""

from __future__ import annotations

import pytest

from p2p.repo import ChainHead, ChainInvalid, ForkDetected, append, check_known_head, verify_segment
from provenance import Identity, record_cid, sign_record

ALICE = Identity.from_seed(b"a" * 32)
MALLORY = Identity.from_seed(b"m" * 32)


def rec(n: int):
    return record_cid({"type": "x", "n": n})


def chain(identity: Identity, n: int) -> list[tuple]:
    out, head = [], None
    for i in range(n):
        head = append(identity, head, rec(i))
        out.append((record_cid(head), head))
    return out


def test_append_builds_a_linked_chain_that_verifies() -> None:
    commits = chain(ALICE, 3)
    assert [c["seq"] for _, c in commits] == [0, 1, 2]
    assert "prev" not in commits[0][1]
    assert commits[2][1]["prev"] == commits[1][0]
    assert verify_segment(ALICE.did, commits[::-1], None) == commits
    known = ChainHead(0, commits[0][0])
    assert verify_segment(ALICE.did, commits[:0:-1], known) == commits[1:]


def test_a_second_commit_at_a_known_seq_is_a_fork() -> None:
    commits = chain(ALICE, 2)
    other = append(ALICE, commits[0][1], rec(99))  # same seq 1, same key, different record
    assert other["seq"] == 1 and record_cid(other) != commits[1][0]
    known = {0: commits[0][0], 1: commits[1][0]}
    with pytest.raises(ForkDetected, match="fork at seq 1"):
        check_known_head(ALICE.did, 1, record_cid(other), known.get)
    assert check_known_head(ALICE.did, 1, commits[1][0], known.get)
    # and a chain growing from the other branch is refused where it leaves ours
    grown = append(ALICE, other, rec(100))
    with pytest.raises(ForkDetected, match="fork at seq 1"):
        verify_segment(ALICE.did, [(record_cid(grown), grown)], ChainHead(1, commits[1][0]))


def test_commit_signed_by_someone_else_is_refused() -> None:
    commits = chain(ALICE, 1)
    forged = sign_record(
        {
            k: v
            for k, v in append(ALICE, commits[0][1], rec(1)).items()
            if k not in ("sig", "signer")
        },
        MALLORY,
    )
    assert forged["repo"] == ALICE.did and forged["signer"] == MALLORY.did
    with pytest.raises(ChainInvalid, match="signed by " + MALLORY.did):
        verify_segment(ALICE.did, [(record_cid(forged), forged)], ChainHead(0, commits[0][0]))
    mallorys = chain(MALLORY, 1)
    with pytest.raises(ChainInvalid, match="names repo"):
        verify_segment(ALICE.did, mallorys, None)


def test_tampered_commit_gaps_and_bad_starts_are_refused() -> None:
    commits = chain(ALICE, 3)
    cid, commit = commits[1]
    tampered = {**commit, "record": rec(42)}
    with pytest.raises(ChainInvalid, match="bad signature"):
        verify_segment(ALICE.did, [(cid, tampered)], ChainHead(0, commits[0][0]))
    with pytest.raises(ChainInvalid, match="does not match its CID"):
        verify_segment(ALICE.did, [(commits[2][0], commit)], ChainHead(0, commits[0][0]))
    with pytest.raises(ChainInvalid, match="does not link"):
        verify_segment(ALICE.did, [commits[2], commits[0]], None)
    with pytest.raises(ChainInvalid, match="not 0"):
        verify_segment(ALICE.did, [commits[2], commits[1]], None)
    with pytest.raises(ChainInvalid, match="expected 1"):
        verify_segment(ALICE.did, [commits[2]], ChainHead(0, commits[0][0]))
