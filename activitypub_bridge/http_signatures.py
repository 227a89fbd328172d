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
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import http_sf
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from http_message_signatures import HTTPMessageSignaturesException as LibraryError
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.digests import ContentDigest

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

DEFAULT_WINDOW_S = 3600.0
CAVAGE_POST_HEADERS = ("(request-target)", "host", "date", "digest", "content-type")
CAVAGE_GET_HEADERS = ("(request-target)", "host", "date", "accept")
RFC9421_COMPONENTS = ("@method", "@target-uri", "content-digest", "date")
ACTIVITY_JSON = "application/activity+json"

KeyLookup = Callable[[str], PublicKeyTypes | None]
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class RejectReason(StrEnum):
    UNSIGNED = "unsigned"
    MALFORMED = "malformed signature"
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    MISSING_COVERED_HEADER = "missing covered header"
    BAD_DIGEST = "bad digest"
    STALE_DATE = "stale date"
    UNKNOWN_KEY = "unknown key"
    BAD_SIGNATURE = "bad signature"


class SignatureRejected(Exception):
    """A request whose signature is absent or not acceptable; ``reason`` says which check failed."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified signature vouches for: who signed, how, which parts, and when."""

    key_id: str
    scheme: str  # "draft-cavage" or "rfc9421"
    algorithm: str
    covered: tuple[str, ...]
    created: float  # signing time (Date header, or RFC 9421 ``created``), Unix seconds


@dataclass(frozen=True)
class SignedRequest:
    """An incoming request as the verifier needs it (``url`` absolute, as the sender saw it)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


def _header_map(headers: Headers) -> dict[str, str]:
    """Lower-cased names; repeated field lines joined with ", " (RFC 9110 section 5.3)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key, val = name.lower(), value.strip()
        out[key] = f"{out[key]}, {val}" if key in out else val
    return out


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"not an absolute URL: {url!r}")
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _path_with_query(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _http_date(now: float) -> str:
    return email.utils.formatdate(now, usegmt=True)


def _check_window(created: float, now: float, window: float, what: str) -> None:
    if abs(created - now) > window:
        direction = "future" if created > now else "past"
        raise SignatureRejected(
            RejectReason.STALE_DATE,
            f"{what} is {abs(created - now):.0f} s in the {direction} (window ±{window:.0f} s)",
        )


def _parse_http_date(value: str) -> float:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):  # a day of 10**15: Overflow
        shown = value[:100]
        raise SignatureRejected(RejectReason.STALE_DATE, f"unparseable Date {shown!r}") from None


# --- draft-cavage-http-signatures-12 ------------------------------------------------------------


def _sha256_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _cavage_signing_string(
    names: Iterable[str], method: str, path_with_query: str, headers: Mapping[str, str]
) -> str:
    lines = []
    for name in names:
        if name == "(request-target)":
            value = f"{method.lower()} {path_with_query}"
        elif name in headers:
            value = headers[name]
        else:
            raise SignatureRejected(
                RejectReason.MISSING_COVERED_HEADER, f"signed header {name!r} is not in the request"
            )
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def sign_cavage(
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    key_id: str,
    private_key: rsa.RSAPrivateKey,
    *,
    now: float | None = None,
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``Date`` (if absent), ``Digest`` (bodies) and ``Signature``.

    A request with a body signs ``(request-target) host date digest content-type``
    (``Content-Type`` defaults to ``application/activity+json``); one without signs
    ``(request-target) host date`` plus ``accept`` when an ``Accept`` header is given.
    """
    out = _header_map(headers)
    out["host"] = _host_of(url)
    out.setdefault("date", _http_date(time.time() if now is None else now))
    if body is not None:
        out["digest"] = _sha256_digest(body)
        out.setdefault("content-type", ACTIVITY_JSON)
        names = list(CAVAGE_POST_HEADERS)
    else:
        names = [n for n in CAVAGE_GET_HEADERS if n != "accept" or "accept" in out]
    signing_string = _cavage_signing_string(names, method, _path_with_query(url), out)
    signature = private_key.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    out["signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return {_canonical_name(k): v for k, v in out.items()}


def _canonical_name(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|(\d+))\s*(?:,|$)')


def _parse_cavage_params(value: str) -> dict[str, str]:
    if value[:10].lower() == "signature ":  # the ``Authorization: Signature ...`` form
        value = value[10:]
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None:
            raise SignatureRejected(RejectReason.MALFORMED, f"cannot parse Signature {value!r}")
        params[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
    for required in ("keyId", "signature"):
        if required not in params:
            raise SignatureRejected(RejectReason.MALFORMED, f"Signature has no {required}")
    return params


def _needs_body_coverage(method: str, body: bytes | None) -> bool:
    return body is not None and (bool(body) or method.upper() in {"POST", "PUT", "PATCH"})


def _check_legacy_digest(value: str, body: bytes) -> None:
    """RFC 3230 ``Digest``: every SHA-256/SHA-512 member must match; at least one must exist."""
    hashers = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = False
    for member in value.split(","):
        algo, _, b64 = member.strip().partition("=")
        hasher = hashers.get(algo.strip().lower())
        if hasher is None:
            continue
        try:
            claimed = base64.b64decode(b64.strip(), validate=True)
        except ValueError:
            raise SignatureRejected(RejectReason.BAD_DIGEST, "Digest is not base64") from None
        if not hmac.compare_digest(claimed, hasher(body).digest()):
            raise SignatureRejected(RejectReason.BAD_DIGEST, "Digest does not match the body")
        checked = True
    if not checked:
        raise SignatureRejected(RejectReason.BAD_DIGEST, f"no SHA-256 digest in {value!r}")


def verify_cavage(
    method: str,
    path_with_query: str,
    headers: Headers,
    body: bytes | None,
    key_lookup: KeyLookup,
    *,
    now: float | None = None,
    window: float = DEFAULT_WINDOW_S,
) -> VerifiedSignature:
    """Verify a draft-cavage ``Signature`` (or ``Authorization: Signature``) on a request.

    The signed list must include ``(request-target)``, ``host``, ``date`` and, for a body,
    ``digest``; the ``Digest`` must match ``body``; ``Date`` must lie within ``now ± window``.
    ``rsa-sha256`` and ``hs2019`` (any case; absent means ``hs2019``) verify as
    RSASSA-PKCS1-v1_5/SHA-256 with an RSA key, as Mastodon does.
    """
    now = time.time() if now is None else now
    hdrs = _header_map(headers)
    raw = hdrs.get("signature") or hdrs.get("authorization", "")
    if not raw or ("signature" not in hdrs and not raw.lower().startswith("signature ")):
        raise SignatureRejected(RejectReason.UNSIGNED, "no Signature header")
    params = _parse_cavage_params(raw)
    key_id = params["keyId"]
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in {"rsa-sha256", "hs2019"}:
        raise SignatureRejected(RejectReason.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    names = params.get("headers", "date").lower().split()
    required = ["(request-target)", "host", "date"]
    if _needs_body_coverage(method, body):
        required.append("digest")
    for name in required:
        if name not in names:
            raise SignatureRejected(
                RejectReason.MISSING_COVERED_HEADER, f"signature does not cover {name!r}"
            )
    for name in names:
        if name not in hdrs and name != "(request-target)":
            raise SignatureRejected(
                RejectReason.MISSING_COVERED_HEADER, f"signed header {name!r} is not in the request"
            )
    if body is not None and "digest" in names:
        _check_legacy_digest(hdrs["digest"], body)
    created = _parse_http_date(hdrs["date"])
    _check_window(created, now, window, "Date")
    key = key_lookup(key_id)
    if key is None:
        raise SignatureRejected(RejectReason.UNKNOWN_KEY, f"no key for {key_id!r}")
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRejected(
            RejectReason.UNSUPPORTED_ALGORITHM, f"{algorithm} needs an RSA key, {key_id!r} is not"
        )
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise SignatureRejected(RejectReason.MALFORMED, "signature is not base64") from None
    signing_string = _cavage_signing_string(names, method, path_with_query, hdrs)
    try:
        key.verify(signature, signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    except CryptoInvalidSignature:
        raise SignatureRejected(
            RejectReason.BAD_SIGNATURE, f"signature by {key_id!r} does not verify"
        ) from None
    return VerifiedSignature(key_id, "draft-cavage", algorithm, tuple(names), created)


# --- RFC 9421 via http-message-signatures -------------------------------------------------------


@dataclass
class _Message:
    """The request interface http-message-signatures resolves components from."""

    method: str
    url: str
    headers: dict[str, str]


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, key: Any) -> None:
        self.key_id, self.key = key_id, key

    def resolve_public_key(self, key_id: str) -> Any:
        return self.key if key_id == self.key_id else None

    def resolve_private_key(self, key_id: str) -> Any:
        if key_id != self.key_id:
            raise KeyError(key_id)
        return self.key


class _WindowedVerifier(HTTPMessageVerifier):
    """The library's verifier with its real-clock ``created`` check replaced by ours."""

    def __init__(self, *, now: float, window: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._now, self._window = now, window

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        created = sig_input.params.get("created")
        if type(created) is not int:
            raise SignatureRejected(RejectReason.MALFORMED, "Signature-Input has no created time")
        _check_window(float(created), self._now, self._window, "created")
        expires = sig_input.params.get("expires")
        if type(expires) is int and expires < self._now:
            raise SignatureRejected(RejectReason.STALE_DATE, "signature has expired")


_ALGORITHMS: dict[str, type[algorithms.HTTPSignatureAlgorithm]] = {
    "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    "ed25519": algorithms.ED25519,
}


def sign_rfc9421(
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    key_id: str,
    private_key: rsa.RSAPrivateKey,
    *,
    now: float | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """``headers`` plus ``Date`` (if absent), ``Content-Digest`` (bodies, sha-256) and signature.

    Covers ``@method @target-uri`` + ``content-digest`` (bodies) + ``date``, with ``created``,
    ``keyid`` and ``alg="rsa-v1_5-sha256"`` parameters (what Fedify and Mastodon verify).
    """
    now = time.time() if now is None else now
    hdrs = {_canonical_name(k): v for k, v in _header_map(headers).items()}
    hdrs.setdefault("Date", _http_date(now))
    if body is not None:
        hdrs.setdefault("Content-Type", ACTIVITY_JSON)
        hdrs.pop("Content-Digest", None)
    message = _Message(method.upper(), url, hdrs)
    components = [c for c in RFC9421_COMPONENTS if c != "content-digest" or body is not None]
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=_OneKey(key_id, private_key)
    )
    try:
        signer.sign(
            message,
            key_id=key_id,
            created=_utc(now),
            label=label,
            covered_component_ids=components,
            body=body,
        )
    except LibraryError as exc:
        raise ValueError(f"cannot sign {method} {url}: {exc}") from None
    return message.headers


def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(ts), tz=datetime.UTC)


def _parse_signature_input(value: str) -> tuple[list[str], dict[str, Any]]:
    """Components and parameters of the single label in ``Signature-Input``."""
    try:
        parsed: Any = http_sf.parse(value.encode(), tltype="dictionary")
    except (ValueError, TypeError, UnicodeError):
        raise SignatureRejected(RejectReason.MALFORMED, "unparseable Signature-Input") from None
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise SignatureRejected(RejectReason.MALFORMED, "expected exactly one Signature-Input")
    members, params = next(iter(parsed.values()))
    if not isinstance(members, list) or any(not isinstance(m[0], str) for m in members):
        raise SignatureRejected(RejectReason.MALFORMED, "Signature-Input is not a component list")
    if not isinstance(params.get("keyid"), str):
        raise SignatureRejected(RejectReason.MALFORMED, "Signature-Input has no keyid")
    return [str(m[0]) for m in members], dict(params)


def verify_rfc9421(
    method: str,
    url: str,
    headers: Headers,
    body: bytes | None,
    key_lookup: KeyLookup,
    *,
    now: float | None = None,
    window: float = DEFAULT_WINDOW_S,
) -> VerifiedSignature:
    """Verify an RFC 9421 signature (one ``Signature-Input`` label) on a request to ``url``.

    Requires ``@method`` and ``@target-uri`` (or ``@authority`` and ``@path``) covered and, for
    a body, ``content-digest`` covered and matching; ``created`` within ``now ± window``.
    """
    now = time.time() if now is None else now
    hdrs = _header_map(headers)
    if "signature-input" not in hdrs or "signature" not in hdrs:
        raise SignatureRejected(RejectReason.UNSIGNED, "no Signature-Input/Signature headers")
    components, params = _parse_signature_input(hdrs["signature-input"])
    key_id: str = params["keyid"]
    covered = set(components)
    target = ["@target-uri"] if {"@authority", "@path"} - covered else ["@authority", "@path"]
    required = ["@method", *target]
    if _needs_body_coverage(method, body):
        required.append("content-digest")
    for name in required:
        if name not in covered:
            raise SignatureRejected(
                RejectReason.MISSING_COVERED_HEADER, f"signature does not cover {name!r}"
            )
    for name in components:
        if not name.startswith("@") and name not in hdrs:
            raise SignatureRejected(
                RejectReason.MISSING_COVERED_HEADER, f"covered field {name!r} is not in the request"
            )
    if body is not None and "content-digest" in covered:
        try:
            ContentDigest.verify(hdrs["content-digest"], body)
        except LibraryError as exc:
            raise SignatureRejected(RejectReason.BAD_DIGEST, str(exc)) from None
    if type(params.get("created")) is not int:
        raise SignatureRejected(RejectReason.MALFORMED, "Signature-Input has no created time")
    _check_window(float(params["created"]), now, window, "created")
    if "date" in covered:
        _check_window(_parse_http_date(hdrs["date"]), now, window, "Date")
    key = key_lookup(key_id)
    if key is None:
        raise SignatureRejected(RejectReason.UNKNOWN_KEY, f"no key for {key_id!r}")
    alg = params.get("alg")
    if alg is None:
        alg = "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "rsa-v1_5-sha256"
    algorithm = _ALGORITHMS.get(str(alg).lower())
    if algorithm is None:
        raise SignatureRejected(RejectReason.UNSUPPORTED_ALGORITHM, f"alg {alg!r}")
    verifier = _WindowedVerifier(
        now=now, window=window, signature_algorithm=algorithm, key_resolver=_OneKey(key_id, key)
    )
    try:
        verifier.verify(_Message(method.upper(), url, hdrs), max_age=None)
    except InvalidSignature as exc:
        raise SignatureRejected(
            RejectReason.BAD_SIGNATURE, f"signature by {key_id!r} does not verify ({exc})"
        ) from None
    except LibraryError as exc:
        raise SignatureRejected(RejectReason.MALFORMED, str(exc)) from None
    return VerifiedSignature(
        key_id, "rfc9421", str(alg), tuple(components), float(params["created"])
    )


# --- either form, and keys ----------------------------------------------------------------------


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
    hdrs = _header_map(headers)
    if "signature-input" in hdrs:
        return verify_rfc9421(method, url, hdrs, body, key_lookup, now=now, window=window)
    return verify_cavage(
        method, _path_with_query(url), hdrs, body, key_lookup, now=now, window=window
    )


def signature_key_id(headers: Headers) -> str:
    """The key id a request claims to be signed with (unverified), for fetching the key first."""
    hdrs = _header_map(headers)
    if "signature-input" in hdrs:
        return str(_parse_signature_input(hdrs["signature-input"])[1]["keyid"])
    raw = hdrs.get("signature") or hdrs.get("authorization", "")
    if not raw or ("signature" not in hdrs and not raw.lower().startswith("signature ")):
        raise SignatureRejected(RejectReason.UNSIGNED, "no Signature header")
    return _parse_cavage_params(raw)["keyId"]
