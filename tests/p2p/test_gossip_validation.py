"""The pure gossip validator and peer scores, without a network."""

from __future__ import annotations

import pytest

from dag import encode_dagcbor
from p2p.gossip import (
    CLAIMS,
    HEADS,
    DuplicateCache,
    PeerScores,
    Reject,
    TopicSpec,
    envelope,
    make_claim_announce,
    make_head_message,
    validate,
)
from provenance import Identity, parse_timestamp, record_cid, sign_record

ALICE = Identity.from_seed(b"a" * 32)
MALLORY = Identity.from_seed(b"m" * 32)
TARGET = record_cid({"type": "x"})


def _now(record: dict) -> float:
    return parse_timestamp(record["created"]).timestamp()


def check(raw: bytes, now: float, spec: TopicSpec = HEADS, seen: DuplicateCache | None = None):
    return validate(spec, raw, now=now, seen=seen if seen is not None else DuplicateCache())


def test_accepts_a_signed_head_and_remembers_it() -> None:
    message = make_head_message(ALICE, 3, TARGET)
    seen = DuplicateCache()
    result = check(encode_dagcbor(message), _now(message), seen=seen)
    assert not isinstance(result, Reject), result
    assert result.record == message and result.cid == record_cid(message)
    assert len(seen) == 1


def test_accepts_a_claim_announcement_on_the_claims_topic() -> None:
    message = make_claim_announce(ALICE, TARGET, subject=TARGET)
    assert not isinstance(check(encode_dagcbor(message), _now(message), CLAIMS), Reject)


@pytest.mark.parametrize(
    ("reason", "make"),
    [
        ("too-big", lambda m: encode_dagcbor({**m, "pad": "x" * 4000})),
        ("bad-cbor", lambda m: encode_dagcbor(m)[:-3]),
        ("bad-cbor", lambda m: b"\xa1\x61b\x01\x61a"),  # truncated/non-canonical
        ("bad-schema", lambda m: encode_dagcbor({**m, "type": "asset"})),
        ("bad-schema", lambda m: encode_dagcbor({k: v for k, v in m.items() if k != "nonce"})),
        ("bad-schema", lambda m: encode_dagcbor([m])),
        ("bad-signature", lambda m: encode_dagcbor({**m, "seq": m["seq"] + 1})),
        ("bad-signature", lambda m: encode_dagcbor({**m, "sig": bytes(64)})),
        ("wrong-topic", lambda m: encode_dagcbor({**m, "topic": CLAIMS.name})),
    ],
)
def test_rejects_malformed_or_forged_messages(reason: str, make) -> None:
    message = make_head_message(ALICE, 0, TARGET)
    result = check(make(message), _now(message))
    assert isinstance(result, Reject) and result.reason == reason, result


def test_rejects_unsigned_messages() -> None:
    unsigned = envelope("head", HEADS, repo=ALICE.did, seq=0, head=TARGET)
    result = check(encode_dagcbor(unsigned), _now(unsigned))
    assert isinstance(result, Reject) and result.reason == "bad-signature"


def test_time_window() -> None:
    message = make_head_message(ALICE, 0, TARGET)
    raw, created = encode_dagcbor(message), _now(message)
    too_old = check(raw, created + HEADS.max_age_s + 1)
    assert isinstance(too_old, Reject) and too_old.reason == "too-old"
    future = check(raw, created - HEADS.max_future_s - 1)
    assert isinstance(future, Reject) and future.reason == "from-future"
    assert not isinstance(check(raw, created + HEADS.max_age_s - 1), Reject)


def test_replay_within_the_window_is_refused_and_forgotten_after_it() -> None:
    message = make_head_message(ALICE, 0, TARGET)
    raw, now = encode_dagcbor(message), _now(message)
    seen = DuplicateCache()
    assert not isinstance(check(raw, now, seen=seen), Reject)
    again = check(raw, now + 10, seen=seen)
    assert isinstance(again, Reject) and again.reason == "replay"
    seen.prune(now + HEADS.max_age_s + HEADS.max_future_s + 1)
    assert len(seen) == 0  # the entry expired once the window would refuse the record anyway


def test_topic_rule_head_must_be_signed_by_the_repo_owner() -> None:
    unsigned = envelope("head", HEADS, repo=ALICE.did, seq=0, head=TARGET)
    forged = sign_record({**unsigned, "repo": ALICE.did}, MALLORY)
    result = check(encode_dagcbor(forged), _now(forged))
    assert isinstance(result, Reject) and result.reason == "rejected"
    assert MALLORY.did in result.detail


def test_topic_spec_refuses_foreign_names() -> None:
    with pytest.raises(ValueError):
        TopicSpec("/meshsub/x", 10, frozenset({"head"}), 10)


def test_peer_scores_fall_with_invalid_messages_and_recover() -> None:
    scores = PeerScores(half_life_s=60, graylist_threshold=-50)
    for _ in range(3):
        scores.record_invalid("p", "bad-signature", now=0)
    assert scores.score("p", 0) == -60 and scores.is_graylisted("p", 0)
    assert scores.score("p", 60) == pytest.approx(-30) and not scores.is_graylisted("p", 60)
    scores.record_valid("q", now=0)
    stats = scores.stats(now=60)
    assert stats["p"].invalid == {"bad-signature": 3} and stats["p"].graylisted is False
    assert stats["q"].valid == 1 and stats["q"].score > 0
    assert scores.score("unknown", 0) == 0
