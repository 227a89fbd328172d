"""Self-test of the Fedify test peer (tests/harness/fedify_peer.py): two real Fedify 2.3.6
instances on 127.0.0.1 follow each other, and Fedify refuses an unsigned inbox POST.
Nothing here is artdag code; it proves the peer the ActivityPub bridge tests rely on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.harness.fedify_peer import FirstKnock, fedify_peer, require_fedify


def _of_type(kind: str) -> Any:
    return lambda acts: [a for a in acts if a["type"] == kind]


@pytest.mark.parametrize(
    ("first_knock", "form"),
    [("rfc9421", "rfc9421"), ("draft-cavage-http-signatures-12", "cavage")],
)
async def test_two_fedify_peers_follow_and_accept(first_knock: FirstKnock, form: str) -> None:
    require_fedify()
    async with (
        fedify_peer(username="alice", first_knock=first_knock) as a,
        fedify_peer(username="bob") as b,
    ):
        sent = await a.follow(b.actor)
        assert sent["target_actor"] == b.actor
        assert sent["inbox"] == f"{b.url}/users/bob/inbox"

        follows = await b.wait_for(_of_type("Follow"))
        assert [(f["id"], f["actor"], f["object"]) for f in follows] == [
            (sent["follow_id"], a.actor, b.actor)
        ]
        assert follows[0]["signature"] == form
        accepts = await a.wait_for(_of_type("Accept"))
        assert accepts[0]["actor"] == b.actor
        assert accepts[0]["object"] == sent["follow_id"]
        assert accepts[0]["object_type"] == "Follow"

        posts = [r for r in await b.requests() if r["method"] == "POST"]
        assert posts[0]["path"] == "/users/bob/inbox"
        assert posts[0]["signature"] == form
        assert posts[0]["status"] == 202
        assert [f["actor"] for f in await b.followers()] == [a.actor]
        assert [f["actor"] for f in await a.following()] == [b.actor]


async def test_unsigned_inbox_post_is_refused() -> None:
    require_fedify()
    async with fedify_peer() as b:
        follow = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": "http://127.0.0.1:9/follows/1",
            "type": "Follow",
            "actor": "http://127.0.0.1:9/users/mallory",
            "object": b.actor,
        }
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(
                f"{b.url}/users/bob/inbox",
                json=follow,
                headers={"content-type": "application/activity+json"},
            )
        assert 400 <= response.status_code < 500
        received = await b.received()
        assert received["activities"] == []
        assert [(r["method"], r["signature"]) for r in received["requests"]] == [("POST", None)]
        assert received["requests"][0]["status"] == response.status_code
