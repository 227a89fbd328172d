"""The bridge's JSON documents against what Mastodon and Fedify need (docs/decisions.md,
"ActivityPub peers").

Pure tests, no network. The keys are real (an RSA 2048 actor key, an Ed25519 did:key from
``provenance.Identity``) and the checks decode them independently of the builders: the PEM is
loaded back with ``cryptography`` and the FEP-521a multibase is decoded with ``multiformats``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from multiformats import multibase

from activitypub_bridge import generate_actor_key, public_key_pem
from activitypub_bridge.documents import (
    ACTIVITY_JSON,
    NODEINFO_21_REL,
    PUBLIC,
    BridgeSite,
    Creator,
    DocumentError,
    WorkInfo,
    accept_follow,
    actor,
    attachment_type,
    nodeinfo,
    nodeinfo_links,
    note_for_work,
    ordered_collection,
    ordered_collection_page,
    parse_acct,
    webfinger,
)
from provenance import Identity

BASE = "https://alice-node.example"
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
CID2 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
ID_KEYS = {
    "id",
    "inbox",
    "outbox",
    "followers",
    "following",
    "sharedInbox",
    "owner",
    "controller",
    "first",
    "next",
    "prev",
    "partOf",
    "attributedTo",
    "url",
    "href",
}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return generate_actor_key()


@pytest.fixture(scope="module")
def identity() -> Identity:
    return Identity.generate()


@pytest.fixture(scope="module")
def site() -> BridgeSite:
    return BridgeSite.parse(BASE)


@pytest.fixture(scope="module")
def alice(rsa_key: rsa.RSAPrivateKey, identity: Identity) -> Creator:
    return Creator(
        username="alice",
        did=identity.did,
        public_key_pem=public_key_pem(rsa_key),
        name="Alice <Artist>",
        summary="Makes <video> & sound.\nLine two.",
    )


def work(mime: str = "video/mp4", cid: str = CID) -> WorkInfo:
    return WorkInfo(
        cid=cid,
        name="Dawn <loop>",
        mime=mime,
        width=640,
        height=360,
        alt='A sunrise over "the" sea',
        provenance_url=f"{BASE}/works/{cid}",
        gateway_url=f"{BASE}/ipfs/{cid}",
    )


def own_urls(doc: Any) -> Iterator[tuple[str, str]]:
    """Every (key, value) in ``doc`` whose key names a URL the bridge emits."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ID_KEYS and isinstance(value, str):
                yield key, value
            yield from own_urls(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from own_urls(item)


def assert_ids_under_base(doc: Any) -> None:
    found = list(own_urls(doc))
    assert found
    for key, value in found:
        assert value.startswith(BASE + "/"), (key, value)
    assert json.loads(json.dumps(doc)) == doc


# -- site --------------------------------------------------------------------------------------


def test_site_parse_https_and_loopback_http_only_when_allowed() -> None:
    assert BridgeSite.parse("alice-node.example") == BridgeSite(BASE, "alice-node.example")
    assert BridgeSite.parse("https://Alice-Node.Example:443/") == BridgeSite(
        BASE, "alice-node.example"
    )
    assert BridgeSite.parse("https://alice-node.example:8443").domain == "alice-node.example:8443"
    assert BridgeSite.parse("https://bücher.example").domain == "xn--bcher-kva.example"
    site = BridgeSite.parse("http://127.0.0.1:8080", allow_http_loopback=True)
    assert site == BridgeSite("http://127.0.0.1:8080", "127.0.0.1:8080")
    with pytest.raises(DocumentError, match="must be https"):
        BridgeSite.parse("http://127.0.0.1:8080")
    with pytest.raises(DocumentError, match="only on a loopback"):
        BridgeSite.parse("http://alice-node.example", allow_http_loopback=True)
    for bad in (
        "",
        "ftp://alice-node.example",
        "https://alice-node.example/ap",
        "https://alice-node.example?x=1",
        "https://u@alice-node.example",
        "https://alice-node.example:99999",
    ):
        with pytest.raises(DocumentError):
            BridgeSite.parse(bad)


# -- webfinger ---------------------------------------------------------------------------------


def test_webfinger_known_user(site: BridgeSite, alice: Creator) -> None:
    for resource in (
        "acct:alice@alice-node.example",
        "acct:ALICE@Alice-Node.Example",
        "alice@alice-node.example",
        f"{BASE}/users/alice",
        f"{BASE}/@alice",
    ):
        jrd = webfinger(site, [alice], resource)
        assert jrd is not None, resource
        assert jrd["subject"] == "acct:alice@alice-node.example"
        assert f"{BASE}/users/alice" in jrd["aliases"]
        selfs = [link for link in jrd["links"] if link["rel"] == "self"]
        assert selfs == [{"rel": "self", "type": ACTIVITY_JSON, "href": f"{BASE}/users/alice"}]
        assert any(link["rel"].endswith("profile-page") for link in jrd["links"])
        assert_ids_under_base(jrd)
    # Mastodon's reverse check: preferredUsername@host of the actor is the subject.
    person = actor(site, alice)
    jrd = webfinger(site, [alice], "acct:alice@alice-node.example")
    assert jrd is not None
    assert jrd["subject"] == f"acct:{person['preferredUsername']}@alice-node.example"


def test_webfinger_unknown_user_or_other_domain_is_none(site: BridgeSite, alice: Creator) -> None:
    assert webfinger(site, [alice], "acct:bob@alice-node.example") is None
    assert webfinger(site, [alice], "acct:alice@other.example") is None
    assert webfinger(site, [alice], "acct:alice@alice-node.example:8443") is None
    assert webfinger(site, [], "acct:alice@alice-node.example") is None
    assert webfinger(site, [alice], f"{BASE}/users/bob") is None
    assert webfinger(site, [alice], f"{BASE}/users/alice/inbox") is None
    assert webfinger(site, [alice], "https://other.example/users/alice") is None


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "acct:",
        "acct:alice",
        "acct:@alice-node.example",
        "acct:alice@",
        "acct:al ice@alice-node.example",
        "mailto:alice@alice-node.example",
        "acct:alice@bad..example",
        "acct:alice@alice-node.example:port",
    ],
)
def test_webfinger_bad_resource_raises(site: BridgeSite, alice: Creator, resource: str) -> None:
    with pytest.raises(DocumentError):
        webfinger(site, [alice], resource)


def test_parse_acct() -> None:
    assert parse_acct("acct:Alice@Bücher.Example") == ("Alice", "xn--bcher-kva.example")
    assert parse_acct("@bob@127.0.0.1:8080") == ("bob", "127.0.0.1:8080")
    with pytest.raises(DocumentError, match="acct:user@domain"):
        parse_acct("acct:alice")


# -- nodeinfo ----------------------------------------------------------------------------------


def test_nodeinfo(site: BridgeSite) -> None:
    links = nodeinfo_links(site)
    assert links == {"links": [{"rel": NODEINFO_21_REL, "href": f"{BASE}/nodeinfo/2.1"}]}
    assert NODEINFO_21_REL == "http://nodeinfo.diaspora.software/ns/schema/2.1"
    doc = nodeinfo(site, users_total=3, local_posts=17, version="0.1.0")
    # Required by the NodeInfo 2.1 schema.
    assert set(doc) >= {
        "version",
        "software",
        "protocols",
        "services",
        "openRegistrations",
        "usage",
        "metadata",
    }
    assert doc["version"] == "2.1"
    assert doc["software"]["name"] == "artdag" and doc["software"]["version"] == "0.1.0"
    assert doc["protocols"] == ["activitypub"]
    assert doc["services"] == {"inbound": [], "outbound": []}
    assert doc["openRegistrations"] is False
    assert doc["usage"]["users"]["total"] == 3 and doc["usage"]["localPosts"] == 17
    assert json.loads(json.dumps(doc)) == doc
    for bad in ({"users_total": -1}, {"local_posts": 1.5}, {"version": ""}):
        args: dict[str, Any] = {"users_total": 1, "local_posts": 1, "version": "1"} | bad
        with pytest.raises(DocumentError):
            nodeinfo(site, **args)


# -- actor -------------------------------------------------------------------------------------


def test_actor_has_everything_mastodon_needs(
    site: BridgeSite, alice: Creator, rsa_key: rsa.RSAPrivateKey, identity: Identity
) -> None:
    doc = actor(site, alice)
    actor_id = f"{BASE}/users/alice"
    assert doc["type"] == "Person" and doc["id"] == actor_id
    assert doc["preferredUsername"] == "alice"
    for key in ("inbox", "outbox", "followers", "following", "url", "name", "summary"):
        assert isinstance(doc[key], str) and doc[key], key
    assert doc["endpoints"]["sharedInbox"] == f"{BASE}/inbox"
    assert doc["manuallyApprovesFollowers"] is False and doc["discoverable"] is True
    contexts = doc["@context"]
    for ctx in (
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        "https://w3id.org/security/multikey/v1",
    ):
        assert ctx in contexts
    assert doc["summary"] == "<p>Makes &lt;video&gt; &amp; sound.<br>Line two.</p>"
    assert len({doc[k] for k in ("inbox", "outbox", "followers", "following")}) == 4
    assert_ids_under_base(doc)

    key = doc["publicKey"]
    assert key == {
        "id": actor_id + "#main-key",
        "owner": actor_id,
        "publicKeyPem": key["publicKeyPem"],
    }
    loaded = load_pem_public_key(key["publicKeyPem"].encode())
    assert isinstance(loaded, rsa.RSAPublicKey)
    assert loaded.public_numbers() == rsa_key.public_key().public_numbers()

    [method] = doc["assertionMethod"]
    assert method["id"] == actor_id + "#ed25519-key"
    assert method["type"] == "Multikey" and method["controller"] == actor_id
    raw = multibase.decode(method["publicKeyMultibase"])
    assert raw[:2] == b"\xed\x01" and len(raw[2:]) == 32
    assert raw[2:] == identity.public_key_bytes
    ed25519.Ed25519PublicKey.from_public_bytes(raw[2:]).verify(identity.sign(b"x"), b"x")


def test_creator_validation(rsa_key: rsa.RSAPrivateKey, identity: Identity) -> None:
    pem = public_key_pem(rsa_key)
    ed_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for kwargs, words in (
        ({"did": "did:web:alice.example"}, "did:key"),
        ({"did": "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"}, "Ed25519"),
        ({"public_key_pem": "not a pem"}, "PEM"),
        ({"public_key_pem": ed_pem}, "RSA"),
        ({"username": "al ice"}, "username"),
        ({"username": ""}, "username"),
    ):
        args = {"username": "alice", "did": identity.did, "public_key_pem": pem} | kwargs
        with pytest.raises(DocumentError, match=words):
            Creator(**args)


# -- collections -------------------------------------------------------------------------------


def test_paginated_collections(site: BridgeSite) -> None:
    outbox = site.outbox("alice")
    head = ordered_collection(outbox, total=45, first=site.page_id(outbox, 1))
    assert head["type"] == "OrderedCollection" and head["totalItems"] == 45
    assert head["first"] == f"{BASE}/users/alice/outbox?page=1"
    assert_ids_under_base(head)
    pages = [
        ordered_collection_page(
            site.page_id(outbox, n),
            outbox,
            [f"{BASE}/activities/alice/{n}-{i}/create" for i in range(20 if n < 3 else 5)],
            next=site.page_id(outbox, n + 1) if n < 3 else None,
            prev=site.page_id(outbox, n - 1) if n > 1 else None,
        )
        for n in (1, 2, 3)
    ]
    assert "prev" not in pages[0] and "next" not in pages[2]
    assert pages[0]["next"] == pages[1]["id"] and pages[1]["prev"] == pages[0]["id"]
    assert pages[1]["next"] == pages[2]["id"] and pages[2]["prev"] == pages[1]["id"]
    assert sum(len(p["orderedItems"]) for p in pages) == head["totalItems"]
    for page in pages:
        assert page["type"] == "OrderedCollectionPage" and page["partOf"] == outbox
        assert_ids_under_base(page)
    empty = ordered_collection(site.followers("alice"), total=0, first=None)
    assert "first" not in empty and empty["totalItems"] == 0
    with pytest.raises(DocumentError):
        site.page_id(outbox, 0)


# -- notes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("video/mp4", "Video"),
        ("video/webm", "Video"),
        ("image/png", "Image"),
        ("image/jpeg", "Image"),
        ("audio/ogg", "Audio"),
        ("audio/mpeg", "Audio"),
        ("application/pdf", "Document"),
        ("model/gltf-binary", "Document"),
        ("text/plain", "Document"),
    ],
)
def test_note_for_each_media_type(site: BridgeSite, alice: Creator, mime: str, kind: str) -> None:
    assert attachment_type(mime) == kind
    published = datetime(2026, 11, 21, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    create, note = note_for_work(site, alice, work(mime), "New piece", published)
    actor_id = f"{BASE}/users/alice"
    assert create["type"] == "Create" and note["type"] == "Note"
    assert create["actor"] == actor_id and note["attributedTo"] == actor_id
    assert create["object"] == {k: v for k, v in note.items() if k != "@context"}
    assert create["id"] != note["id"]
    assert note["id"] == f"{BASE}/objects/alice/{CID}"
    assert create["id"].startswith(f"{BASE}/activities/")
    for doc in (create, note):
        assert doc["to"] == [PUBLIC] and doc["cc"] == [f"{BASE}/users/alice/followers"]
        assert doc["published"] == "2026-11-21T12:00:00Z"
    assert note["attachment"] == [
        {
            "type": kind,
            "mediaType": mime,
            "url": f"{BASE}/ipfs/{CID}",
            "name": 'A sunrise over "the" sea',
            "width": 640,
            "height": 360,
        }
    ]
    assert f'href="{BASE}/works/{CID}"' in note["content"]
    assert f'href="ipfs://{CID}"' in note["content"]
    assert_ids_under_base(create)
    assert_ids_under_base(note)


def test_note_escapes_text(site: BridgeSite, alice: Creator) -> None:
    text = '<script>alert("x")</script> & <b>bold</b>\n\nsecond "para"'
    _, note = note_for_work(site, alice, work(), text, "2026-11-21T12:00:00Z")
    content = note["content"]
    assert "<script" not in content and "<b>" not in content
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in content
    )
    assert "<p>second &quot;para&quot;</p>" in content
    assert "Dawn &lt;loop&gt;" in content  # the work name in the provenance link, escaped


def test_note_ids_are_deterministic(site: BridgeSite, alice: Creator, identity: Identity) -> None:
    c1, n1 = note_for_work(site, alice, work(), "first", "2026-11-21T12:00:00Z")
    c2, n2 = note_for_work(site, alice, work(), "again", datetime(2027, 1, 1, tzinfo=UTC))
    assert (c1["id"], n1["id"]) == (c2["id"], n2["id"])
    c3, n3 = note_for_work(site, alice, work(cid=CID2), "other", "2026-11-21T12:00:00Z")
    assert c3["id"] != c1["id"] and n3["id"] != n1["id"]
    bob = Creator("bob", identity.did, alice.public_key_pem)
    c4, n4 = note_for_work(site, bob, work(), "bob's", "2026-11-21T12:00:00Z")
    assert c4["id"] != c1["id"] and n4["id"] != n1["id"]


def test_note_and_work_validation(site: BridgeSite, alice: Creator) -> None:
    with pytest.raises(DocumentError, match="naive"):
        note_for_work(site, alice, work(), "x", datetime(2026, 1, 1))
    with pytest.raises(DocumentError, match="RFC 3339"):
        note_for_work(site, alice, work(), "x", "yesterday")
    with pytest.raises(DocumentError, match="MIME"):
        work("video")
    with pytest.raises(DocumentError, match="CID"):
        work(cid="../../etc")
    with pytest.raises(DocumentError, match="width"):
        WorkInfo(CID, "n", "image/png", 0, 10, "", f"{BASE}/w", f"{BASE}/g")
    with pytest.raises(DocumentError, match="gateway_url"):
        WorkInfo(CID, "n", "image/png", 1, 1, "", f"{BASE}/w", "javascript:alert(1)")


# -- accept ------------------------------------------------------------------------------------


def test_accept_follow_embeds_the_follow(site: BridgeSite, alice: Creator) -> None:
    follow = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://bob.example/follows/1",
        "type": "Follow",
        "actor": "https://bob.example/users/bob",
        "object": f"{BASE}/users/alice",
    }
    accept = accept_follow(site, alice, follow)
    assert accept["type"] == "Accept" and accept["actor"] == f"{BASE}/users/alice"
    assert accept["object"] == {k: v for k, v in follow.items() if k != "@context"}
    assert accept["to"] == ["https://bob.example/users/bob"]
    assert accept["id"].startswith(f"{BASE}/activities/alice/accept/")
    assert accept["id"] != follow["id"]
    assert accept_follow(site, alice, follow)["id"] == accept["id"]
    other = accept_follow(site, alice, follow | {"id": "https://bob.example/follows/2"})
    assert other["id"] != accept["id"]
    embedded_actor = follow | {"actor": {"id": "https://bob.example/users/bob", "type": "Person"}}
    assert accept_follow(site, alice, embedded_actor)["to"] == ["https://bob.example/users/bob"]
    assert json.loads(json.dumps(accept)) == accept

    for bad, words in (
        (follow | {"type": "Like"}, "Follow"),
        (follow | {"object": f"{BASE}/users/carol"}, "not"),
        ({k: v for k, v in follow.items() if k != "id"}, "no id"),
        (follow | {"actor": None}, "actor"),
    ):
        with pytest.raises(DocumentError, match=words):
            accept_follow(site, alice, bad)
