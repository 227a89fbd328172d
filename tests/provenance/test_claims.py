"""Claims and disputes, the pure part (``provenance.claims``): split parsing, claim records,
ranking by anchor time, and which claims are disputes."""

from __future__ import annotations

import pytest

import dag
from provenance import Identity, RecordError, sign_record, verify_signed
from provenance.claims import (
    DEFAULT_SPLIT,
    ClaimInfo,
    find_disputes,
    make_claim_record,
    parse_split,
    rank_claims,
)
from provenance.splits import SplitError

WORK = dag.Block.encode(b"a work", "raw").cid
COPY = dag.Block.encode(b"a copy of the work", "raw").cid


def test_split_parsing_is_exact_and_refuses_bad_input() -> None:
    assert parse_split([]) == DEFAULT_SPLIT == {
        "footage": 4000, "effects": 2500, "recipe": 2000, "infrastructure": 1500
    }  # fmt: skip
    assert parse_split(["footage=50", "effects=25.25", "recipe=24.75"]) == {
        "footage": 5000, "effects": 2525, "recipe": 2475
    }  # fmt: skip
    for bad, why in [
        (["footage=60", "recipe=30"], "sums to 90%"),
        (["footage"], "ROLE=PERCENT"),
        (["footage=abc"], "not a percentage"),
        (["footage=33.333", "recipe=66.667"], "two decimals"),
        (["footage=50", "footage=50"], "twice"),
        (["footage=150"], "between 0 and 100"),
    ]:
        with pytest.raises(SplitError, match=why):
            parse_split(bad)


def test_a_claim_record_is_signed_and_verifies() -> None:
    me = Identity.generate()
    record = make_claim_record(WORK, split=parse_split(["footage=100"]), license="CC-BY-4.0",
                               fingerprint=b"\x01\x02")  # fmt: skip
    signed = sign_record(record, me)
    verify_signed(signed)
    assert signed["signer"] == me.did and signed["split"] == {"footage": 10000}
    with pytest.raises(RecordError):
        make_claim_record(WORK, split={"footage": 9000})


def info(
    cid: str, subject: str, who: str, created: float, anchored: float | None = None
) -> ClaimInfo:
    return ClaimInfo(cid, subject, who, created, anchored)


def test_the_earliest_anchored_claim_wins_whatever_the_claimed_times() -> None:
    early_anchor = info("c1", "w", "did:key:zB", created=500, anchored=1000)
    late_anchor = info("c2", "w", "did:key:zA", created=100, anchored=2000)
    unanchored_old = info("c3", "w", "did:key:zC", created=1)  # claims to be oldest: unproven
    ranked = rank_claims([unanchored_old, late_anchor, early_anchor])
    assert [c.cid for c in ranked] == ["c1", "c2", "c3"]
    # among unanchored claims, their own timestamps decide, then the CID
    assert [c.cid for c in rank_claims([info("b", "w", "x", 5), info("a", "w", "y", 5)])] == [
        "a", "b"
    ]  # fmt: skip


def test_disputes_same_work_and_near_duplicates() -> None:
    alice, bob = "did:key:zAlice", "did:key:zBob"
    claims = [
        info("c1", "work", alice, 10, anchored=100),
        info("c2", "work", alice, 20),  # the same claimant again: an update, not a dispute
        info("c3", "copy", bob, 5),
        info("c4", "other", bob, 5),
    ]
    assert find_disputes(claims) == []
    found = find_disputes(claims, {"copy": [("work", 0.97)]})
    assert len(found) == 1
    dispute = found[0]
    assert dispute.reason == "near-duplicate"
    assert dispute.winner.cid == "c1"  # anchored beats an earlier unanchored claim
    assert "similarity 0.97" in dispute.evidence[0]
    found = find_disputes([*claims, info("c5", "work", bob, 1)])
    assert [(d.subject, d.reason, d.winner.claimant) for d in found] == [
        ("work", "same-work", alice)
    ]
    assert find_disputes(claims, {"copy": [("copy", 1.0)]}) == []  # itself is no match
