"""HTTP Signatures for ActivityPub, sans-I/O: sign outgoing requests, verify incoming ones.

Two wire forms, both spoken by the fediverse (docs/decisions.md, "Signed fetches" and "ActivityPub
peers"):

- **draft-cavage-http-signatures-12** (Mastodon's): a ``Signature`` header with ``keyId``,
  ``algorithm``, ``headers`` and ``signature`` over the signing string of draft section 2.3,
  plus ``Digest: SHA-256=<base64>`` (RFC 3230) for bodies. No maintained PyPI library covers
  this draft (``http-message-signatures`` implements only RFC 9421), so it is written here by
  hand: building the signing string, RSASSA-PKCS1-v1_5/SHA-256 via ``cryptography``.
- **RFC 9421** via the PyPI library ``http-message-signatures``: signature bases, the
  ``Signature-Input``/``Signature`` structured fields and the crypto are the library's. Two
  things are ours: the library checks ``created`` against the real clock with a fixed 5 s
  skew, so a subclass replaces that check with the injectable clock and the ±window used for
  cavage's ``Date`` (Fedify uses ±1 h too); and the Signature-Input is pre-parsed with
  ``http-sf`` (the library's own dependency) so that an unknown key, a stale ``created`` or a
  missing covered component are reported as such rather than as one opaque failure, and so the
  algorithm class can be chosen from ``alg`` (or from the key type when ``alg`` is absent).

Everything here is pure over bytes and an already-fetched key: ``key_lookup(key_id)`` returns a
``cryptography`` public key or ``None``. Fetching keys is the caller's I/O;
:mod:`activitypub_bridge.key_cache` holds fetched keys and re-fetches one once when a signature
fails (key rotation). Every rejection is one :class:`SignatureRejected`
whose ``reason`` (:class:`RejectReason`) maps straight to a 401.

URLs: verification needs the URL as the *sender* saw it (``https://public.host/inbox``); behind a
proxy the caller rebuilds it from the configured public base, not from the socket.

The shared types and helpers are in :mod:`activitypub_bridge.signed_requests`, each form in its
own module (:mod:`~activitypub_bridge.cavage_signatures`,
:mod:`~activitypub_bridge.rfc9421_signatures`); this module picks the form of an incoming request
and re-exports the public names.
"""

from __future__ import annotations

from .cavage_signatures import (
    CAVAGE_GET_HEADERS,
    CAVAGE_POST_HEADERS,
    parse_cavage_params,
    sign_cavage,
    verify_cavage,
)
from .rfc9421_signatures import (
    RFC9421_COMPONENTS,
    parse_signature_input,
    sign_rfc9421,
    verify_rfc9421,
)
from .signed_requests import (
    DEFAULT_WINDOW_S,
    Headers,
    KeyLookup,
    RejectReason,
    SignatureRejected,
    SignedRequest,
    VerifiedSignature,
    header_map,
    path_with_query,
)

__all__ = [
    "CAVAGE_GET_HEADERS",
    "CAVAGE_POST_HEADERS",
    "DEFAULT_WINDOW_S",
    "RFC9421_COMPONENTS",
    "KeyLookup",
    "RejectReason",
    "SignatureRejected",
    "SignedRequest",
    "VerifiedSignature",
    "signature_key_id",
    "sign_cavage",
    "sign_rfc9421",
    "verify_cavage",
    "verify_request",
    "verify_rfc9421",
]


def verify_request(
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    key_lookup: KeyLookup,
    *,
    now: float | None = None,
    window: float = DEFAULT_WINDOW_S,
) -> VerifiedSignature:
    """Verify either form: RFC 9421 when ``Signature-Input`` is present, else draft-cavage."""
    hdrs = header_map(headers)
    if "signature-input" in hdrs:
        return verify_rfc9421(method, url, hdrs, body, key_lookup, now=now, window=window)
    return verify_cavage(
        method, path_with_query(url), hdrs, body, key_lookup, now=now, window=window
    )


def signature_key_id(headers: Headers) -> str:
    """The key id a request claims to be signed with (unverified), for fetching the key first."""
    hdrs = header_map(headers)
    if "signature-input" in hdrs:
        return str(parse_signature_input(hdrs["signature-input"])[1]["keyid"])
    raw = hdrs.get("signature") or hdrs.get("authorization", "")
    if not raw or ("signature" not in hdrs and not raw.lower().startswith("signature ")):
        raise SignatureRejected(RejectReason.UNSIGNED, "no Signature header")
    return parse_cavage_params(raw)["keyId"]
