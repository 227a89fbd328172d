"""The fediverse bridge mounted in a real daemon, against a hand-built remote server.

The remote here is a test double (``tests/harness/ap_remote.py``) so that it can send what no real
server sends: tampered bodies, wrong keys, stale dates, unsigned POSTs. The independent peer
(Fedify) is in ``tests/interop/test_activitypub_fedify.py``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from activitypub_bridge import generate_actor_key, sign_cavage
from tests.harness.ap_remote import RemoteServer, remote_server
from tests.harness.daemons import DaemonProcess, wait_until
from tests.harness.media import make_video
from tests.harness.web_daemons import bridge_daemon, free_port

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = bridge_daemon(tmp_path_factory.mktemp("ap") / "alice").start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteServer]:
    with remote_server(("mallory", "trent", "rotor", "dora")) as server:
        yield server


def public(d: DaemonProcess, path: str, **kwargs: object) -> httpx.Response:
    """A request without the API token, as a remote server makes it."""
    return httpx.get(d.api_url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


def actor_url(d: DaemonProcess) -> str:
    return d.api_url + "/users/alice"


def followers_of(d: DaemonProcess) -> list[str]:
    body = d.api("GET", "/api/v1/activitypub/followers").json()
    return [f["actor"] for f in body["followers"]]


def inbound_ids(d: DaemonProcess) -> list[str]:
    with sqlite3.connect(d.home / "activitypub.db") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM inbound")]


# -- discovery ------------------------------------------------------------------------------------


def test_webfinger_nodeinfo_and_actor_are_public_and_every_id_resolves(
    daemon: DaemonProcess,
) -> None:
    host = daemon.api_url.removeprefix("http://")
    finger = public(daemon, "/.well-known/webfinger", params={"resource": f"acct:alice@{host}"})
    assert finger.status_code == 200
    assert finger.headers["content-type"].startswith("application/jrd+json")
    self_link = next(link for link in finger.json()["links"] if link["rel"] == "self")
    assert self_link == {
        "rel": "self",
        "type": "application/activity+json",
        "href": actor_url(daemon),
    }
    assert (
        public(
            daemon, "/.well-known/webfinger", params={"resource": "acct:bob@" + host}
        ).status_code
        == 404
    )
    assert (
        public(daemon, "/.well-known/webfinger", params={"resource": "nonsense"}).status_code == 400
    )
    assert public(daemon, "/.well-known/webfinger").status_code == 400

    links = public(daemon, "/.well-known/nodeinfo").json()["links"]
    info = httpx.get(links[0]["href"], timeout=10)
    assert info.json()["version"] == "2.1" and info.json()["software"]["name"] == "artdag"

    person = public(daemon, "/users/alice")
    assert person.headers["content-type"].startswith("application/activity+json")
    doc = person.json()
    assert doc["preferredUsername"] == "alice"
    assert "BEGIN PUBLIC KEY" in doc["publicKey"]["publicKeyPem"]
    assert doc["assertionMethod"][0]["publicKeyMultibase"].startswith("z6Mk")
    for url in (
        doc["inbox"],
        doc["outbox"],
        doc["followers"],
        doc["following"],
        doc["endpoints"]["sharedInbox"],
        doc["publicKey"]["id"],
        doc["url"],
    ):
        assert httpx.get(url, timeout=10).status_code == 200, url
    outbox = httpx.get(doc["outbox"], timeout=10).json()
    assert httpx.get(outbox["first"], timeout=10).json()["type"] == "OrderedCollectionPage"
    assert public(daemon, "/users/nobody").status_code == 404


# -- signatures on the inbox ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "how", ["unsigned", "tampered body", "wrong key", "stale date", "future date"]
)
def test_bad_signatures_get_401_and_store_nothing(
    daemon: DaemonProcess, remote: RemoteServer, how: str
) -> None:
    before_followers, before_inbound = followers_of(daemon), inbound_ids(daemon)
    follow = remote.follow(actor_url(daemon), "trent")
    kwargs: dict[str, object] = {"name": "trent"}
    if how == "unsigned":
        kwargs["sign"] = False
    elif how == "tampered body":
        kwargs["tamper"] = True
    elif how == "wrong key":
        kwargs["key"] = generate_actor_key()
    elif how == "stale date":
        kwargs["now"] = time.time() - 7200
    elif how == "future date":
        kwargs["now"] = time.time() + 7200
    response = remote.signed_post(daemon.api_url + "/users/alice/inbox", follow, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 401, response.text
    assert response.headers.get("WWW-Authenticate", "").startswith("Signature")
    assert followers_of(daemon) == before_followers
    assert inbound_ids(daemon) == before_inbound
    assert not [r for r in remote.of_type("Accept") if follow["id"] in r.body.decode()]


@pytest.mark.parametrize(
    ("what", "extra", "why"),
    [
        ("nested 1,000 deep", "[" * 1000 + "]" * 1000, "nested deeper"),
        ("a 5,000-digit integer", "9" * 5000, "digits"),
    ],
)
def test_validly_signed_body_beyond_json_limits_gets_400_and_stores_nothing(
    daemon: DaemonProcess, remote: RemoteServer, what: str, extra: str, why: str
) -> None:
    """Before the bounded parser these answered 500 (RecursionError, ValueError)."""
    before_followers, before_inbound = followers_of(daemon), inbound_ids(daemon)
    follow = remote.follow(actor_url(daemon), "trent")
    body = (json.dumps(follow)[:-1] + f', "extra": {extra}}}').encode()
    response = remote.signed_post(
        daemon.api_url + "/users/alice/inbox", follow, name="trent", body=body
    )
    assert response.status_code == 400, (what, response.status_code, response.text[:300])
    assert why in response.json()["error"]
    assert followers_of(daemon) == before_followers
    assert inbound_ids(daemon) == before_inbound
    assert not [r for r in remote.of_type("Accept") if follow["id"] in r.body.decode()]
    # The signature was good: the same Follow without the extra field is accepted.
    ok = remote.signed_post(daemon.api_url + "/users/alice/inbox", follow, name="trent")
    assert ok.status_code == 202, ok.text
    assert remote.actor_id("trent") in followers_of(daemon)
    undo = {
        "id": follow["id"] + "#undo",
        "type": "Undo",
        "actor": remote.actor_id("trent"),
        "object": follow,
    }
    assert remote.signed_post(daemon.api_url + "/inbox", undo, name="trent").status_code == 202


def test_a_key_on_a_server_that_is_down_gets_401_not_500(
    daemon: DaemonProcess, remote: RemoteServer
) -> None:
    """The signer's server refuses connections: the key cannot be fetched, the POST is
    refused as unverifiable (before, the transport error escaped as a 500)."""
    gone = f"http://127.0.0.1:{free_port()}/users/ghost"
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": gone + "/follows/1",
        "type": "Follow",
        "actor": gone,
        "object": actor_url(daemon),
    }
    body = json.dumps(follow).encode()
    url = daemon.api_url + "/inbox"
    headers = sign_cavage(
        "POST",
        url,
        {"Content-Type": "application/activity+json"},
        body,
        gone + "#main-key",
        generate_actor_key(),
    )
    headers.pop("Host", None)
    response = httpx.post(url, content=body, headers=headers, timeout=30)
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert gone not in followers_of(daemon)


@pytest.mark.parametrize("path", ["/api/v1/activitypub/publish", "/api/v1/activitypub/blocks"])
def test_local_api_bodies_beyond_json_limits_get_400(daemon: DaemonProcess, path: str) -> None:
    for body in (b"[" * 1000 + b"]" * 1000, b'{"cid": ' + b"1" * 5000 + b"}"):
        response = daemon.api("POST", path, content=body)
        assert response.status_code == 400, (path, response.status_code, response.text[:200])


def test_oversized_body_is_refused(daemon: DaemonProcess) -> None:
    response = httpx.post(
        daemon.api_url + "/inbox", content=b"{" + b" " * (2 << 20) + b"}", timeout=30
    )
    assert response.status_code == 413


# -- follow, accept, undo --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["cavage", "rfc9421"])
def test_follow_gets_a_signed_accept_and_undo_removes(
    daemon: DaemonProcess, remote: RemoteServer, style: str
) -> None:
    follow = remote.follow(actor_url(daemon))
    response = remote.signed_post(daemon.api_url + "/users/alice/inbox", follow, style=style)
    assert response.status_code == 202, response.text
    assert remote.actor_id() in followers_of(daemon)

    def accepted() -> list[object]:
        return [r for r in remote.of_type("Accept") if follow["id"] in r.body.decode()]

    wait_until(lambda: accepted(), 20, "the Accept")
    accept = accepted()[0]
    assert accept.verified, accept.error
    assert accept.path == "/users/mallory/inbox"  # the follower's own inbox
    assert accept.activity["object"]["id"] == follow["id"]
    assert httpx.get(accept.activity["id"], timeout=10).json()["type"] == "Accept"

    # The same Follow delivered again is recognised (no second Accept).
    again = remote.signed_post(daemon.api_url + "/inbox", follow, style=style)
    assert again.status_code == 202 and "already" in again.json()["error"]

    undo = {
        "id": follow["id"] + "/undo",
        "type": "Undo",
        "actor": remote.actor_id(),
        "object": follow,
    }
    response = remote.signed_post(daemon.api_url + "/inbox", undo, style=style)
    assert response.status_code == 202, response.text
    assert remote.actor_id() not in followers_of(daemon)


def test_delete_of_a_remote_actor_removes_it(daemon: DaemonProcess, remote: RemoteServer) -> None:
    follow = remote.follow(actor_url(daemon), "dora")
    assert remote.signed_post(daemon.api_url + "/inbox", follow, name="dora").status_code == 202
    assert remote.actor_id("dora") in followers_of(daemon)
    delete = {
        "id": remote.actor_id("dora") + "#delete",
        "type": "Delete",
        "actor": remote.actor_id("dora"),
        "object": remote.actor_id("dora"),
    }
    response = remote.signed_post(daemon.api_url + "/inbox", delete, name="dora")
    assert response.status_code == 202, response.text
    assert remote.actor_id("dora") not in followers_of(daemon)


def test_forged_actor_is_refused(daemon: DaemonProcess, remote: RemoteServer) -> None:
    """Signed by trent's key, claiming to be mallory."""
    follow = remote.follow(actor_url(daemon), "mallory")
    response = remote.signed_post(daemon.api_url + "/inbox", follow, name="trent")
    assert response.status_code == 401
    assert remote.actor_id("mallory") not in followers_of(daemon)


def test_key_rotation_is_followed(daemon: DaemonProcess, remote: RemoteServer) -> None:
    """An actor whose key changes after we cached it: the key is fetched once more.
    (A fresh actor: the bad-signature tests already spent trent's re-fetch allowance.)"""
    first = remote.signed_post(
        daemon.api_url + "/inbox", remote.follow(actor_url(daemon), "rotor"), name="rotor"
    )
    assert first.status_code == 202, first.text
    remote.rotate_key("rotor")
    second = remote.signed_post(
        daemon.api_url + "/inbox", remote.follow(actor_url(daemon), "rotor"), name="rotor"
    )
    assert second.status_code == 202, second.text
    # A forged signature right after is not worth another fetch: refused.
    remote.rotate_key("rotor")
    third = remote.signed_post(
        daemon.api_url + "/inbox", remote.follow(actor_url(daemon), "rotor"), name="rotor"
    )
    assert third.status_code == 401


# -- publishing, likes, blocks ---------------------------------------------------------------


def test_publish_likes_and_blocks(
    daemon: DaemonProcess, remote: RemoteServer, tmp_path: Path
) -> None:
    follow = remote.follow(actor_url(daemon))
    assert remote.signed_post(daemon.api_url + "/inbox", follow).status_code == 202
    video = make_video(tmp_path / "clip.mp4", seconds=1, size="320x180", container="mp4")
    asset = daemon.add_bytes(video.read_bytes(), "clip.mp4")
    cid = asset["cid"]

    out = daemon.cli("publish", cid, "--text", "A new clip", "--json")
    published = json.loads(out.stdout)
    assert published["queued"] == 1 and not published["already_published"]

    def creates() -> list[object]:
        return [r for r in remote.of_type("Create") if r.activity["id"] == published["activity"]]

    wait_until(lambda: creates(), 20, "the Create")
    create = creates()[0]
    assert create.verified, create.error
    assert create.path == "/inbox"  # the shared inbox
    note = create.activity["object"]
    assert note["type"] == "Note" and "A new clip" in note["content"]
    assert f"ipfs://{cid}" in note["content"]
    media = note["attachment"][0]
    assert media["type"] == "Video" and media["mediaType"] == "video/mp4"
    assert (media["width"], media["height"]) == (320, 180)
    assert media["url"].endswith(f"/ipfs/{cid}")
    # Every id resolves: the note, the Create, and the outbox lists it.
    assert httpx.get(note["id"], timeout=10).json()["id"] == note["id"]
    assert httpx.get(published["activity"], timeout=10).json()["type"] == "Create"
    # The note links to the work's public provenance page, which plays it from the gateway.
    provenance = httpx.get(note["url"], timeout=30)
    assert provenance.status_code == 200, provenance.text
    assert f'src="/ipfs/{cid}"' in provenance.text and "<video" in provenance.text
    played = httpx.get(media["url"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert played.status_code == 206 and played.content == video.read_bytes()[:100]
    page = httpx.get(actor_url(daemon) + "/outbox?page=1", timeout=10).json()
    assert page["orderedItems"][0]["id"] == published["activity"]

    again = json.loads(daemon.cli("publish", cid, "--json").stdout)
    assert again["already_published"] and again["queued"] == 0

    # A Like and a boost of the note become usage records for settlement.
    for kind in ("Like", "Announce"):
        activity = {
            "id": f"{remote.actor_id()}/{kind.lower()}s/1",
            "type": kind,
            "actor": remote.actor_id(),
            "object": note["id"],
        }
        assert remote.signed_post(daemon.api_url + "/inbox", activity).status_code == 202
        # Delivered twice (senders retry), counted once.
        assert remote.signed_post(daemon.api_url + "/inbox", activity).status_code == 202
    with sqlite3.connect(daemon.home / "index.db") as conn:
        rows = conn.execute(
            "SELECT kind, listener FROM usage WHERE subject = ? ORDER BY kind", (cid,)
        ).fetchall()
    assert rows == [("boost", remote.actor_id()), ("like", remote.actor_id())]

    # Block the remote's domain: its POSTs are refused, nothing more is sent to it.
    daemon.cli("block", "127.0.0.1")
    try:
        time.sleep(1.2)  # the daemon re-reads stored blocks at most a second later
        refused = remote.signed_post(
            daemon.api_url + "/inbox", remote.follow(actor_url(daemon), "trent"), name="trent"
        )
        assert refused.status_code == 403
        other = make_video(tmp_path / "other.mp4", seconds=1, colour="blue", container="mp4")
        second = daemon.add_bytes(other.read_bytes(), "other.mp4")["cid"]
        sent = json.loads(daemon.cli("publish", second, "--json").stdout)
        assert sent["queued"] == 0
        shown = daemon.cli("followers").stdout.decode()
        assert "blocked domains: 127.0.0.1" in shown
    finally:
        daemon.cli("unblock", "127.0.0.1")
    deliveries = json.loads(daemon.cli("deliveries", "--json").stdout)
    assert deliveries["stats"]["delivered"] >= 2


# -- crash safety ------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_with_deliveries_queued_delivers_each_exactly_once(tmp_path: Path) -> None:
    """Five followers: two remotes with shared inboxes, one remote whose three followers have
    only personal inboxes (so with two sends per host, one of its deliveries is still queued
    when the daemon dies). The remotes hold every POST open; the daemon is SIGKILLed with sends
    in flight and one queued, then restarted: every follower receives the Create, verified, at
    most once more than needed (the resend of an interrupted send), and de-duplicating by
    activity id, as receivers do, each sees it exactly once; nothing is left in the queue."""
    daemon = bridge_daemon(tmp_path / "alice").start()
    try:
        with (
            remote_server(("anna",)) as a,
            remote_server(("bert",)) as b,
            remote_server(("c1", "c2", "c3"), shared_inbox=False) as c,
        ):
            followers = [(a, "anna"), (b, "bert"), (c, "c1"), (c, "c2"), (c, "c3")]
            for server, name in followers:
                response = server.signed_post(
                    daemon.api_url + "/inbox", server.follow(actor_url(daemon), name), name=name
                )
                assert response.status_code == 202, response.text
            wait_until(
                lambda: (
                    all(
                        any(name in r.path for r in server.of_type("Accept"))
                        for server, name in followers
                        if server is c
                    )
                    and a.of_type("Accept")
                    and b.of_type("Accept")
                ),
                20,
                "five Accepts",
            )
            for server in (a, b, c):
                server.hold = threading.Event()
            video = make_video(tmp_path / "clip.mp4", seconds=1, container="mp4")
            cid = daemon.add_bytes(video.read_bytes(), "clip.mp4")["cid"]
            published = json.loads(daemon.cli("publish", cid, "--json").stdout)
            assert published["queued"] == 5
            wait_until(lambda: a.held >= 1 and b.held >= 1 and c.held >= 2, 20, "sends in flight")
            stats = json.loads(daemon.cli("deliveries", "--json").stdout)["stats"]
            assert stats["in-flight"] == 4 and stats["queued"] == 1, stats

            daemon.kill()
            for server in (a, b, c):
                assert server.hold is not None
                server.hold.set()
            daemon.restart()

            create_id = published["activity"]

            def drained() -> bool:
                s = json.loads(daemon.cli("deliveries", "--json").stdout)["stats"]
                return s["delivered"] >= 5 + 5 and s["queued"] == 0 and s["in-flight"] == 0

            wait_until(drained, 30, "the queue to drain after the restart")
            time.sleep(0.5)  # nothing more may arrive
            per_inbox: dict[str, int] = {}
            for server in (a, b, c):
                for r in server.of_type("Create"):
                    assert r.verified, r.error
                    assert r.activity["id"] == create_id
                    per_inbox[server.url + r.path] = per_inbox.get(server.url + r.path, 0) + 1
            expected = {a.url + "/inbox", b.url + "/inbox"} | {
                f"{c.url}/users/{n}/inbox" for n in ("c1", "c2", "c3")
            }
            # Every follower got it, one activity id (receivers de-duplicate by it, so the
            # effect is exactly once per follower) ...
            assert set(per_inbox) == expected
            assert all(1 <= n <= 2 for n in per_inbox.values()), (
                per_inbox
            )  # ... resent at most once
            assert sum(per_inbox.values()) <= 5 + 4  # only the four interrupted sends repeat
    finally:
        daemon.stop()


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ARTDAG_DOMAIN": "http://127.0.0.1:8200"}, "ARTDAG_DOMAIN"),  # http not allowed
        (
            {"ARTDAG_DOMAIN": "http://example.org", "ARTDAG_AP_ALLOW_HTTP_LOOPBACK": "1"},
            "ARTDAG_DOMAIN",  # http only on loopback, even when allowed
        ),
        ({"ARTDAG_DOMAIN": "https://example.org/path"}, "ARTDAG_DOMAIN"),
        ({"ARTDAG_AP_BLOCKED_DOMAINS": "ok.example,not a domain"}, "ARTDAG_AP_BLOCKED_DOMAINS"),
        ({"ARTDAG_AP_FIRST_KNOCK": "hmac"}, "ARTDAG_AP_FIRST_KNOCK"),
        ({"ARTDAG_TLS_CERT": "/nonexistent.pem"}, "ARTDAG_TLS"),
    ],
)
def test_bad_bridge_config_is_refused_naming_the_variable(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    from daemon.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=named):
        load_config(tmp_path, environ=env)


def test_tls_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    from daemon.config import ConfigError, load_config

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    key.chmod(0o644)
    env = {"ARTDAG_TLS_CERT": str(cert), "ARTDAG_TLS_KEY": str(key)}
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(tmp_path, environ=env)
    key.chmod(0o600)
    assert load_config(tmp_path, environ=env).http.tls_key == str(key)
    assert load_config(
        tmp_path, environ={"ARTDAG_DOMAIN": "art.example"}
    ).bridge_site().base_url == ("https://art.example")
