"""Inbox decisions (:func:`activitypub_bridge.inbox.handle_inbox`) and the follower store.

Pure tests, no network: the inbox handler is sans-I/O, and the store is real SQLite in a temp
directory. The creators carry real keys (RSA actor key, Ed25519 did:key).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from activitypub_bridge import domain_blocked, generate_actor_key, public_key_pem
from activitypub_bridge.documents import BridgeSite, Creator
from activitypub_bridge.followers import FollowerStore, FollowerStoreError
from activitypub_bridge.inbox import (
    MAX_ACTIVITY_NODES,
    MAX_DEPTH,
    AddFollower,
    Decision,
    Ignore,
    RecordUsage,
    Reject,
    RejectKind,
    RemoveActor,
    RemoveFollower,
    SendAccept,
    handle_inbox,
)
from provenance import Identity

SITE = BridgeSite.parse("https://alice-node.example")
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
BOB = "https://social.example/users/bob"
FOLLOW_ID = "https://social.example/follows/1"


@pytest.fixture(scope="module")
def creators() -> dict[str, Creator]:
    alice = Creator(
        username="alice",
        did=Identity.generate().did,
        public_key_pem=public_key_pem(generate_actor_key()),
    )
    return {"alice": alice}


def no_blocks(host: str) -> bool:
    return False


def handle(
    creators: dict[str, Creator],
    activity: Any,
    signer: str = BOB,
    blocked: Callable[[str], bool] = no_blocks,
) -> list[Decision]:
    return handle_inbox(SITE, creators, activity, signer, blocked=blocked)


def follow(target: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": FOLLOW_ID,
        "type": "Follow",
        "actor": BOB,
        "object": SITE.actor_id("alice") if target is None else target,
        **extra,
    }


def only_reject(decisions: list[Decision], kind: RejectKind, words: str) -> None:
    assert len(decisions) == 1, decisions
    reject = decisions[0]
    assert isinstance(reject, Reject), decisions
    assert reject.kind is kind
    assert words in reject.reason
    assert "\n" not in reject.reason


def only_ignore(decisions: list[Decision], words: str) -> None:
    assert len(decisions) == 1 and isinstance(decisions[0], Ignore), decisions
    assert words in decisions[0].reason


# -- authority and blocks ---------------------------------------------------------------------


def test_follow_adds_follower_and_sends_accept(creators: dict[str, Creator]) -> None:
    add, accept = handle(creators, follow())
    assert add == AddFollower(creator="alice", follower=BOB, follow_id=FOLLOW_ID)
    assert add.inbox is None and add.shared_inbox is None
    assert isinstance(accept, SendAccept)
    assert (accept.creator, accept.follower) == ("alice", BOB)
    assert accept.accept["type"] == "Accept"
    assert accept.accept["actor"] == SITE.actor_id("alice")
    assert accept.accept["object"]["id"] == FOLLOW_ID
    with pytest.raises(AttributeError):
        add.creator = "mallory"  # type: ignore[misc]


def test_follow_with_embedded_actor_and_object(creators: dict[str, Creator]) -> None:
    activity = follow({"id": SITE.actor_id("alice"), "type": "Person"}, actor={"id": BOB})
    assert isinstance(handle(creators, activity)[0], AddFollower)


def test_forged_actor_is_rejected(creators: dict[str, Creator]) -> None:
    only_reject(
        handle(creators, follow(), signer="https://evil.example/users/mallory"),
        RejectKind.FORGED,
        "is not the signer",
    )


def test_activity_id_on_another_origin_is_forged(creators: dict[str, Creator]) -> None:
    only_reject(
        handle(creators, follow(id="https://evil.example/follows/1")),
        RejectKind.FORGED,
        "origin",
    )


def test_blocked_domain_is_rejected(creators: dict[str, Creator]) -> None:
    seen: list[str] = []

    def blocked(host: str) -> bool:
        seen.append(host)
        return domain_blocked(host, ["Social.Example"])

    only_reject(handle(creators, follow(), blocked=blocked), RejectKind.BLOCKED, "blocked")
    assert seen == ["social.example"]


def test_follow_of_unknown_or_foreign_actor_is_ignored(creators: dict[str, Creator]) -> None:
    only_ignore(handle(creators, follow(SITE.actor_id("carol"))), "not a creator here")
    only_ignore(handle(creators, follow("https://other.example/users/alice")), "not a creator")


def test_follow_without_id_is_malformed(creators: dict[str, Creator]) -> None:
    activity = follow()
    del activity["id"]
    only_reject(handle(creators, activity), RejectKind.MALFORMED, "Follow has no id")


# -- undo -------------------------------------------------------------------------------------


def test_undo_of_embedded_follow_removes_follower(creators: dict[str, Creator]) -> None:
    undo = {"id": BOB + "#undo/1", "type": "Undo", "actor": BOB, "object": follow()}
    assert handle(creators, undo) == [
        RemoveFollower(creator="alice", follower=BOB, follow_id=FOLLOW_ID)
    ]


def test_undo_of_follow_by_id(creators: dict[str, Creator]) -> None:
    undo = {"type": "Undo", "actor": BOB, "object": FOLLOW_ID}
    assert handle(creators, undo) == [
        RemoveFollower(creator=None, follower=BOB, follow_id=FOLLOW_ID)
    ]


def test_undo_of_someone_elses_follow_is_forged(creators: dict[str, Creator]) -> None:
    other = follow(actor="https://social.example/users/carol")
    undo = {"type": "Undo", "actor": BOB, "object": other}
    only_reject(handle(creators, undo), RejectKind.FORGED, "another actor")
    by_id = {"type": "Undo", "actor": BOB, "object": "https://evil.example/follows/1"}
    only_reject(handle(creators, by_id), RejectKind.FORGED, "origin")


def test_undo_of_a_like_is_ignored(creators: dict[str, Creator]) -> None:
    like = {"type": "Like", "actor": BOB, "object": SITE.note_id("alice", CID)}
    only_ignore(handle(creators, {"type": "Undo", "actor": BOB, "object": like}), "Undo of a Like")


# -- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "usage"), [("Like", "like"), ("Announce", "boost")])
def test_like_and_boost_of_our_note_record_usage(
    creators: dict[str, Creator], kind: str, usage: str
) -> None:
    note = SITE.note_id("alice", CID)
    for obj in (note, {"id": note, "type": "Note"}):
        activity = {"id": "https://social.example/a/1", "type": kind, "actor": BOB, "object": obj}
        assert handle(creators, activity) == [
            RecordUsage(
                subject_cid=CID,
                kind=usage,
                actor=BOB,
                creator="alice",
                activity_id="https://social.example/a/1",
            )
        ]


@pytest.mark.parametrize(
    "target",
    [
        "https://other.example/objects/alice/" + CID,
        SITE.note_id("alice", CID).replace("alice", "carol"),
        SITE.url("/objects/alice"),
        SITE.url("/objects/alice/not-a-cid!"),
        SITE.actor_id("alice"),
    ],
)
def test_like_of_a_foreign_object_is_ignored(creators: dict[str, Creator], target: str) -> None:
    only_ignore(
        handle(creators, {"type": "Like", "actor": BOB, "object": target}), "not a work here"
    )


# -- delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [BOB, {"id": BOB, "type": "Person"}, {"id": BOB, "type": "Tombstone"}],
)
def test_delete_of_the_actor_removes_it(creators: dict[str, Creator], obj: Any) -> None:
    delete = {"id": BOB + "#delete", "type": "Delete", "actor": BOB, "object": obj}
    assert handle(creators, delete) == [RemoveActor(actor=BOB)]


def test_delete_of_a_note_is_ignored(creators: dict[str, Creator]) -> None:
    note = {"id": "https://social.example/notes/9", "type": "Tombstone"}
    only_ignore(handle(creators, {"type": "Delete", "actor": BOB, "object": note}), "Delete of")


# -- ignored types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("Accept", "follow no one"),
        ("Reject", "follow no one"),
        ("Create", "no remote posts"),
        ("Move", "unsupported activity type 'Move'"),
    ],
)
def test_other_types_are_ignored(creators: dict[str, Creator], kind: str, words: str) -> None:
    activity = {"type": kind, "actor": BOB, "object": "https://social.example/x"}
    only_ignore(handle(creators, activity), words)


def test_activity_from_our_own_site_is_ignored(creators: dict[str, Creator]) -> None:
    ours = SITE.actor_id("alice")
    only_ignore(handle(creators, follow(actor=ours, id=None) | {"id": ours + "#f"}, ours), "own")


# -- malformed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activity", "words"),
    [
        ([], "must be a JSON object"),
        ({"actor": BOB, "object": FOLLOW_ID}, "no string type"),
        ({"type": 7, "actor": BOB}, "no string type"),
        ({"type": "Follow", "object": FOLLOW_ID}, "has no actor"),
        ({"type": "Like", "actor": BOB}, "has no object"),
        ({"type": "Like", "actor": BOB, "object": None}, "has no object"),
        ({"type": "Like", "actor": 42, "object": FOLLOW_ID}, "actor must be a string URL"),
        ({"type": "Like", "actor": {"name": "x"}, "object": FOLLOW_ID}, "embedded actor has no id"),
        ({"type": "Like", "actor": BOB, "object": ["x"]}, "object must be a string URL"),
        ({"type": "Like", "actor": BOB, "object": {"id": 3}}, "object.id must be a string"),
        ({"type": "Like", "actor": BOB, "id": 5, "object": FOLLOW_ID}, "id must be a string"),
        ({"type": "Like", "actor": "ftp://social.example/u", "object": FOLLOW_ID}, "https"),
        ({"type": "Like", "actor": "http://social.example/u", "object": FOLLOW_ID}, "https"),
        ({"type": "Like", "actor": "https://a@social.example/u", "object": FOLLOW_ID}, "host"),
        ({"type": "Like", "actor": "https://social.example:x/u", "object": FOLLOW_ID}, "URL"),
        ({"type": "Undo", "actor": BOB, "object": {"id": FOLLOW_ID}}, "no string type"),
        (
            {"type": "Undo", "actor": BOB, "object": {"type": "Follow", "object": FOLLOW_ID}},
            "has no actor",
        ),
    ],
)
def test_malformed_input_is_rejected(
    creators: dict[str, Creator], activity: Any, words: str
) -> None:
    only_reject(handle(creators, activity), RejectKind.MALFORMED, words)


def test_oversized_activities_are_rejected(creators: dict[str, Creator]) -> None:
    long_id = "https://social.example/" + "a" * 3000
    only_reject(
        handle(creators, {"type": "Like", "actor": BOB, "object": long_id}),
        RejectKind.MALFORMED,
        "longer than",
    )
    wide = follow(tag=list(range(MAX_ACTIVITY_NODES)))
    only_reject(handle(creators, wide), RejectKind.MALFORMED, "JSON values")
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    only_reject(handle(creators, follow(tag=deep)), RejectKind.MALFORMED, "deeper")
    only_reject(handle(creators, follow(content="x" * 200_000)), RejectKind.MALFORMED, "string")


def test_http_ids_allowed_only_for_a_loopback_http_site(creators: dict[str, Creator]) -> None:
    site = BridgeSite.parse("http://127.0.0.1:8080", allow_http_loopback=True)
    peer = "http://127.0.0.1:9000/users/bob"
    activity = {
        "id": "http://127.0.0.1:9000/f/1",
        "type": "Follow",
        "actor": peer,
        "object": site.actor_id("alice"),
    }
    decisions = handle_inbox(site, creators, activity, peer, blocked=no_blocks)
    assert isinstance(decisions[0], AddFollower) and decisions[0].follower == peer
    refused = handle_inbox(SITE, creators, activity, peer, blocked=no_blocks)
    only_reject(refused, RejectKind.MALFORMED, "https")


# -- follower store ---------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with FollowerStore(tmp_path / "followers.sqlite") as s:
        yield s


def test_add_is_idempotent(store: FollowerStore) -> None:
    assert store.add("alice", BOB, None, None, followed_at=10.0, follow_id=FOLLOW_ID)
    assert not store.add("alice", BOB, BOB + "/inbox", None, followed_at=20.0)
    assert store.count("alice") == 1
    (row,) = store.followers("alice", limit=10, offset=0)
    assert (row.actor, row.inbox, row.follow_id, row.followed_at) == (
        BOB,
        BOB + "/inbox",
        FOLLOW_ID,
        10.0,
    )
    with pytest.raises(FollowerStoreError, match="actor must be a non-empty string"):
        store.add("alice", "", None, None, 1.0)


def test_followers_page_and_remove(store: FollowerStore) -> None:
    actors = [f"https://h{i}.example/users/u" for i in range(5)]
    for i, actor in enumerate(actors):
        store.add("alice", actor, actor + "/inbox", None, followed_at=float(i))
    assert [f.actor for f in store.followers("alice", limit=2, offset=2)] == actors[2:4]
    assert store.remove("alice", actors[0])
    assert not store.remove("alice", actors[0])
    assert store.count("alice") == 4 and store.count("bob") == 0


def test_delivery_inboxes_use_shared_inbox_once(store: FollowerStore) -> None:
    shared = "https://social.example/inbox"
    for i in range(3):
        actor = f"https://social.example/users/u{i}"
        store.add("alice", actor, actor + "/inbox", shared, followed_at=float(i))
    store.add("alice", "https://solo.example/u", "https://solo.example/u/inbox", None, 5.0)
    store.add("alice", "https://pending.example/u", None, None, 6.0)  # inbox not fetched yet
    store.add("carol", "https://other.example/u", "https://other.example/u/inbox", None, 1.0)
    assert store.delivery_inboxes("alice") == [shared, "https://solo.example/u/inbox"]
    assert store.set_inboxes("https://pending.example/u", "https://pending.example/in", None) == 1
    assert store.delivery_inboxes("alice")[-1] == "https://pending.example/in"
    assert store.delivery_inboxes("alice", also_blocked=["SOCIAL.example"]) == [
        "https://solo.example/u/inbox",
        "https://pending.example/in",
    ]
    store.block_domain("solo.example")
    assert "https://solo.example/u/inbox" not in store.delivery_inboxes("alice")


def test_remove_actor_across_creators_and_undo_by_id(store: FollowerStore) -> None:
    for creator in ("alice", "carol"):
        store.add(creator, BOB, None, None, 1.0, follow_id=f"{FOLLOW_ID}/{creator}")
    store.add("alice", "https://x.example/u", None, None, 1.0)
    assert store.remove_follow(BOB, f"{FOLLOW_ID}/carol") == "carol"
    assert store.remove_follow("https://x.example/u", f"{FOLLOW_ID}/alice") is None
    store.add("carol", BOB, None, None, 1.0)
    assert store.remove_actor(BOB) == 2
    assert store.count("alice") == 1 and store.count("carol") == 0


def test_blocks_are_normalised(store: FollowerStore) -> None:
    assert store.block_domain("*.Bücher.Example.") == "xn--bcher-kva.example"
    assert store.block_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"
    store.block_domain("Spam.Example")
    assert store.blocked_domains() == ["spam.example", "xn--bcher-kva.example"]
    assert store.is_blocked("a.b.spam.example") and not store.is_blocked("example")
    assert store.is_blocked("ok.example", also_blocked=["ok.example"])
    with pytest.raises(FollowerStoreError, match="not a URL"):
        store.block_domain("https://spam.example")
    assert store.unblock("SPAM.example.") and not store.unblock("spam.example")
    assert store.blocked_domains() == ["xn--bcher-kva.example"]


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "followers.sqlite"
    with FollowerStore(path) as first:
        first.add("alice", BOB, BOB + "/inbox", "https://social.example/inbox", 3.0, FOLLOW_ID)
        first.block_domain("spam.example")
    with FollowerStore(path) as again:
        assert again.followers("alice", 10, 0)[0].follow_id == FOLLOW_ID
        assert again.delivery_inboxes("alice") == ["https://social.example/inbox"]
        assert again.blocked_domains() == ["spam.example"]
