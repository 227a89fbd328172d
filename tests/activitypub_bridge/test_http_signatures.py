"""HTTP Signatures for the ActivityPub bridge: both wire forms, rejections, key rotation, keys.

Pure tests: no network. Interop fixtures are produced independently of our signer — the
draft-cavage signing string is built here by hand from draft-cavage-http-signatures-12 section
2.3 and signed with ``cryptography``; RFC 9421 signatures are made by ``http-message-signatures``
directly, including the component set Fedify uses — so the tests do not just mirror the code.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, MappingKeyResolver
from http_message_signatures.algorithms import RSA_V1_5_SHA256

from activitypub_bridge import (
    ActorKeyError,
    KeyCache,
    RejectReason,
    SignatureRejected,
    SignedRequest,
    generate_actor_key,
    load_actor_key,
    load_or_create_actor_key,
    load_public_key_pem,
    public_key_pem,
    save_actor_key,
    sign_cavage,
    sign_rfc9421,
    verify_cavage,
    verify_request,
    verify_with_refetch,
)

T0 = 1_790_000_000.0
KEY_ID = "https://alice.example/users/alice#main-key"
INBOX = "https://bob.example/users/bob/inbox"
OUTBOX = "https://bob.example/users/bob/outbox?page=2"
BODY = b'{"type":"Follow","actor":"https://alice.example/users/alice"}'
SIGNERS = {"cavage": sign_cavage, "rfc9421": sign_rfc9421}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_actor_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_actor_key()


def lookup_for(key: rsa.RSAPrivateKey):
    public = key.public_key()
    return lambda key_id: public if key_id == KEY_ID else None


def signed(form: str, key: rsa.RSAPrivateKey, method: str = "POST", url: str = INBOX):
    body = BODY if method == "POST" else None
    headers = {"Accept": "application/activity+json"}
    return SIGNERS[form](method, url, headers, body, KEY_ID, key, now=T0), body


def rejected(reason: RejectReason, *args, **kwargs) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as info:
        verify_request(*args, **kwargs)
    assert info.value.reason is reason, str(info.value)
    return info.value


# --- round trips and rejections, both forms ---------------------------------------------------


@pytest.mark.parametrize("form", SIGNERS)
@pytest.mark.parametrize(("method", "url"), [("POST", INBOX), ("GET", OUTBOX)])
def test_round_trip(form: str, method: str, url: str, key: rsa.RSAPrivateKey) -> None:
    headers, body = signed(form, key, method, url)
    result = verify_request(method, url, headers, body, lookup_for(key), now=T0 + 5)
    assert result.key_id == KEY_ID
    assert result.scheme == ("draft-cavage" if form == "cavage" else "rfc9421")
    assert result.created == T0
    if method == "POST":
        assert ("digest" if form == "cavage" else "content-digest") in result.covered
    if form == "cavage":
        expected = "(request-target) host date " + (
            "digest content-type" if method == "POST" else "accept"
        )
        assert f'headers="{expected}"' in headers["Signature"]
        assert headers["Host"] == "bob.example"


def test_cavage_digest_header_format(key: rsa.RSAPrivateKey) -> None:
    headers, _ = signed("cavage", key)
    assert (
        headers["Digest"] == "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    )
    assert headers["Content-Type"] == "application/activity+json"
    assert 'algorithm="rsa-sha256"' in headers["Signature"]


def test_rfc9421_content_digest_and_components(key: rsa.RSAPrivateKey) -> None:
    headers, _ = signed("rfc9421", key)
    digest = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert headers["Content-Digest"] == f"sha-256=:{digest}:"
    assert headers["Signature-Input"].startswith(
        'sig1=("@method" "@target-uri" "content-digest" "date");created=1790000000;'
    )
    assert f'keyid="{KEY_ID}"' in headers["Signature-Input"]


@pytest.mark.parametrize("form", SIGNERS)
def test_tampered_body_is_bad_digest(form: str, key: rsa.RSAPrivateKey) -> None:
    headers, _ = signed(form, key)
    tampered = BODY.replace(b"Follow", b"Delete")
    rejected(RejectReason.BAD_DIGEST, "POST", INBOX, headers, tampered, lookup_for(key), now=T0)


@pytest.mark.parametrize("form", SIGNERS)
def test_changed_path_is_bad_signature(form: str, key: rsa.RSAPrivateKey) -> None:
    headers, body = signed(form, key)
    other = "https://bob.example/users/carol/inbox"
    rejected(RejectReason.BAD_SIGNATURE, "POST", other, headers, body, lookup_for(key), now=T0)


@pytest.mark.parametrize("form", SIGNERS)
def test_changed_method_or_header_is_bad_signature(form: str, key: rsa.RSAPrivateKey) -> None:
    headers, body = signed(form, key)
    look = lookup_for(key)
    rejected(RejectReason.BAD_SIGNATURE, "PUT", INBOX, headers, body, look, now=T0)
    moved = dict(headers, Date=email.utils.formatdate(T0 + 1, usegmt=True))
    rejected(RejectReason.BAD_SIGNATURE, "POST", INBOX, moved, body, look, now=T0)
    if form == "cavage":
        changed = dict(headers, **{"Content-Type": "text/plain"})
        rejected(RejectReason.BAD_SIGNATURE, "POST", INBOX, changed, body, look, now=T0)


@pytest.mark.parametrize("form", SIGNERS)
@pytest.mark.parametrize("offset", [3601.0, -3601.0])
def test_date_outside_window_is_stale(form: str, offset: float, key: rsa.RSAPrivateKey) -> None:
    headers, body = signed(form, key)
    look = lookup_for(key)
    error = rejected(RejectReason.STALE_DATE, "POST", INBOX, headers, body, look, now=T0 + offset)
    assert ("past" if offset > 0 else "future") in str(error)
    verify_request("POST", INBOX, headers, body, look, now=T0 + offset * 0.99)
    rejected(RejectReason.STALE_DATE, "POST", INBOX, headers, body, look, now=T0 + 61, window=60)


@pytest.mark.parametrize("headers", [{}, {"Date": "x", "Digest": "SHA-256=x"}])
def test_unsigned(headers: dict[str, str], key: rsa.RSAPrivateKey) -> None:
    rejected(RejectReason.UNSIGNED, "POST", INBOX, headers, BODY, lookup_for(key), now=T0)


@pytest.mark.parametrize("form", SIGNERS)
def test_wrong_key_and_unknown_key(
    form: str, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    headers, body = signed(form, other_key)
    rejected(RejectReason.BAD_SIGNATURE, "POST", INBOX, headers, body, lookup_for(key), now=T0)
    rejected(RejectReason.UNKNOWN_KEY, "POST", INBOX, headers, body, lambda _: None, now=T0)


@pytest.mark.parametrize("form", SIGNERS)
def test_covered_header_absent_from_request(form: str, key: rsa.RSAPrivateKey) -> None:
    headers, body = signed(form, key)
    del headers["Date"]
    rejected(
        RejectReason.MISSING_COVERED_HEADER, "POST", INBOX, headers, body, lookup_for(key), now=T0
    )


def test_body_signature_must_cover_digest(key: rsa.RSAPrivateKey) -> None:
    """A POST signed as if it were a GET (no digest covered) is refused in both forms."""
    look = lookup_for(key)
    cavage = sign_cavage("POST", INBOX, {}, None, KEY_ID, key, now=T0)
    error = rejected(RejectReason.MISSING_COVERED_HEADER, "POST", INBOX, cavage, BODY, look, now=T0)
    assert "digest" in str(error)
    rfc = sign_rfc9421("POST", INBOX, {}, None, KEY_ID, key, now=T0)
    error = rejected(RejectReason.MISSING_COVERED_HEADER, "POST", INBOX, rfc, BODY, look, now=T0)
    assert "content-digest" in str(error)


# --- interop: signatures made without our signer ---------------------------------------------


def hand_signed_cavage(
    key: rsa.RSAPrivateKey, algorithm: str, *, case: str = "lower"
) -> dict[str, str]:
    """draft-cavage-http-signatures-12 section 2.3, built from the spec text.

    Each signed header contributes ``lowercased-name: value``; ``(request-target)`` is the
    lowercased method, a space and the path with query; lines are joined with "\\n" and no
    trailing newline; the result is signed RSASSA-PKCS1-v1_5 with SHA-256.
    """
    date = email.utils.formatdate(T0, usegmt=True)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    signing_string = (
        "(request-target): post /users/bob/inbox\n"
        "host: bob.example\n"
        f"date: {date}\n"
        f"digest: {digest}\n"
        "content-type: application/activity+json"
    )
    signature = key.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    alg = algorithm.upper() if case == "upper" else algorithm
    header = (
        f'keyId="{KEY_ID}",algorithm="{alg}",'
        'headers="(request-target) host date digest content-type",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return {
        "host": "bob.example",
        "DATE": date,
        "Digest": digest,
        "content-type": "application/activity+json",
        "signature": header,
    }


@pytest.mark.parametrize(("algorithm", "case"), [("rsa-sha256", "lower"), ("hs2019", "upper")])
def test_interop_cavage_hand_built(algorithm: str, case: str, key: rsa.RSAPrivateKey) -> None:
    headers = hand_signed_cavage(key, algorithm, case=case)
    result = verify_cavage("POST", "/users/bob/inbox", headers, BODY, lookup_for(key), now=T0)
    assert result.algorithm == algorithm
    assert result.covered == ("(request-target)", "host", "date", "digest", "content-type")


def test_interop_cavage_our_signature_checks_by_hand(key: rsa.RSAPrivateKey) -> None:
    """Our signer's output verifies against the hand-built signing string."""
    headers, _ = signed("cavage", key)
    signature = headers["Signature"].split('signature="')[1].rstrip('"')
    signing_string = (
        "(request-target): post /users/bob/inbox\nhost: bob.example\n"
        f"date: {headers['Date']}\ndigest: {headers['Digest']}\n"
        "content-type: application/activity+json"
    )
    key.public_key().verify(
        base64.b64decode(signature), signing_string.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


class LibraryRequest:
    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method, self.url, self.headers = method, url, headers


@pytest.mark.parametrize(
    "components",
    [
        ("@method", "@target-uri"),
        # Fedify 2.x's default RFC 9421 component set (packages/fedify/src/sig/http.ts).
        ("@method", "@target-uri", "@authority", "host", "date"),
    ],
)
def test_interop_rfc9421_library_signed(
    components: tuple[str, ...], key: rsa.RSAPrivateKey
) -> None:
    request = LibraryRequest(
        "POST",
        INBOX,
        {
            "Host": "bob.example",
            "Date": email.utils.formatdate(T0, usegmt=True),
            "Content-Type": "application/activity+json",
        },
    )
    signer = HTTPMessageSigner(
        signature_algorithm=RSA_V1_5_SHA256,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={KEY_ID: key}),
    )
    signer.sign(
        request,
        key_id=KEY_ID,
        created=datetime.datetime.fromtimestamp(T0, tz=datetime.UTC),
        label="sig1",
        covered_component_ids=components,
        body=BODY,
    )
    result = verify_request("POST", INBOX, request.headers, BODY, lookup_for(key), now=T0 + 30)
    assert result.scheme == "rfc9421"
    assert "content-digest" in result.covered
    rejected(
        RejectReason.BAD_DIGEST,
        "POST",
        INBOX,
        request.headers,
        BODY + b" ",
        lookup_for(key),
        now=T0,
    )


def test_interop_rfc9421_our_signature_verifies_with_library(key: rsa.RSAPrivateKey) -> None:
    headers, body = signed("rfc9421", key)
    verifier = HTTPMessageVerifier(
        signature_algorithm=RSA_V1_5_SHA256,
        key_resolver=MappingKeyResolver(public_keys={KEY_ID: key.public_key()}, private_keys={}),
    )
    verifier.max_clock_skew = datetime.timedelta(days=3650)  # our fixed clock T0 is not "now"
    results = verifier.verify(LibraryRequest("POST", INBOX, headers), max_age=None, body=body)
    assert results[0].parameters["keyid"] == KEY_ID


# --- key cache and rotation -------------------------------------------------------------------


class KeyServer:
    """Stands in for the remote actor document's host (the fetch is I/O outside this layer)."""

    def __init__(self, pem: str | None) -> None:
        self.pem = pem
        self.fetches = 0

    async def fetch(self, key_id: str) -> str | None:
        assert key_id == KEY_ID
        self.fetches += 1
        return self.pem


@pytest.mark.parametrize("form", SIGNERS)
async def test_key_rotation_refetches_once(
    form: str, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    cache = KeyCache(refetch_cooldown=60)
    cache.put(KEY_ID, public_key_pem(key), now=T0 - 3600)  # the old key
    server = KeyServer(public_key_pem(other_key))  # the actor rotated to other_key
    headers, body = signed(form, other_key)
    request = SignedRequest("POST", INBOX, headers, body)

    result = await verify_with_refetch(request, cache, server.fetch, now=T0)
    assert result.key_id == KEY_ID
    assert server.fetches == 1
    entry = cache.get(KEY_ID, now=T0)
    assert entry is not None and entry.pem == public_key_pem(other_key)

    # A forged signature right after: the fresh key fails, and is not fetched again.
    forged, _ = signed(form, key)
    with pytest.raises(SignatureRejected) as info:
        await verify_with_refetch(
            SignedRequest("POST", INBOX, forged, body), cache, server.fetch, now=T0 + 1
        )
    assert info.value.reason is RejectReason.BAD_SIGNATURE
    assert server.fetches == 1


async def test_rotation_right_after_the_first_fetch_is_followed(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    """The cooldown counts from the last failure-driven re-fetch, not from the first fetch."""
    cache = KeyCache(refetch_cooldown=60)
    cache.put(KEY_ID, public_key_pem(key), now=T0 - 5)  # first seen five seconds ago
    server = KeyServer(public_key_pem(other_key))
    headers, body = signed("cavage", other_key)
    result = await verify_with_refetch(
        SignedRequest("POST", INBOX, headers, body), cache, server.fetch, now=T0
    )
    assert result.key_id == KEY_ID and server.fetches == 1


async def test_refetch_happens_at_most_once_per_request(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    cache = KeyCache()
    cache.put(KEY_ID, public_key_pem(key), now=T0 - 3600)
    server = KeyServer(public_key_pem(key))  # still serves the same key: signature is forged
    headers, body = signed("cavage", other_key)
    with pytest.raises(SignatureRejected) as info:
        await verify_with_refetch(
            SignedRequest("POST", INBOX, headers, body), cache, server.fetch, now=T0
        )
    assert info.value.reason is RejectReason.BAD_SIGNATURE
    assert server.fetches == 1


async def test_first_fetch_and_no_refetch_for_non_key_failures(key: rsa.RSAPrivateKey) -> None:
    cache = KeyCache()
    server = KeyServer(public_key_pem(key))
    headers, body = signed("rfc9421", key)
    await verify_with_refetch(
        SignedRequest("POST", INBOX, headers, body), cache, server.fetch, now=T0
    )
    assert server.fetches == 1  # fetched because absent
    with pytest.raises(SignatureRejected) as info:
        await verify_with_refetch(
            SignedRequest("POST", INBOX, headers, b"tampered"), cache, server.fetch, now=T0 + 600
        )
    assert info.value.reason is RejectReason.BAD_DIGEST
    assert server.fetches == 1  # a bad digest is not a key problem


async def test_unfetchable_key_is_unknown(key: rsa.RSAPrivateKey) -> None:
    headers, body = signed("cavage", key)
    for pem in (None, "not a key"):
        with pytest.raises(SignatureRejected) as info:
            await verify_with_refetch(
                SignedRequest("POST", INBOX, headers, body),
                KeyCache(),
                KeyServer(pem).fetch,
                now=T0,
            )
        assert info.value.reason is RejectReason.UNKNOWN_KEY


def test_key_cache_expiry() -> None:
    cache = KeyCache(max_age=100)
    cache.put(KEY_ID, public_key_pem(generate_actor_key()), now=T0)
    assert cache.get(KEY_ID, now=T0 + 100) is not None
    assert cache.get(KEY_ID, now=T0 + 101) is None
    assert cache.lookup(now=T0 + 101)(KEY_ID) is None


# --- actor keys on disk -----------------------------------------------------------------------


def test_actor_key_file_round_trip(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "actor.key"
    save_actor_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_actor_key(path)
    assert loaded.key_size == 2048
    assert public_key_pem(loaded) == public_key_pem(key)
    assert public_key_pem(key).startswith("-----BEGIN PUBLIC KEY-----")
    assert isinstance(load_public_key_pem(public_key_pem(key)), rsa.RSAPublicKey)
    with pytest.raises(ActorKeyError, match="already exists"):
        save_actor_key(generate_actor_key(), path)
    assert public_key_pem(load_actor_key(path)) == public_key_pem(key)  # not overwritten


def test_actor_key_readable_by_others_is_refused(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "actor.key"
    save_actor_key(key, path)
    os.chmod(path, 0o640)
    with pytest.raises(ActorKeyError, match="chmod 600"):
        load_actor_key(path)


def test_load_or_create_actor_key(tmp_path: Path) -> None:
    path = tmp_path / "actor.key"
    first = load_or_create_actor_key(path)
    assert public_key_pem(load_or_create_actor_key(path)) == public_key_pem(first)
    path.write_bytes(b"junk")
    with pytest.raises(ActorKeyError, match="not an unencrypted PEM private key"):
        load_actor_key(path)
