"""RFC 9421 HTTP Message Signatures through the PyPI library ``http-message-signatures``, with
an injectable clock and window for ``created`` and a pre-parse of ``Signature-Input`` that names
what is wrong. See :mod:`activitypub_bridge.http_signatures`, which re-exports the public names.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from http_message_signatures import HTTPMessageSignaturesException as LibraryError
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.digests import ContentDigest

from .signed_requests import (
    ACTIVITY_JSON,
    DEFAULT_WINDOW_S,
    Headers,
    KeyLookup,
    RejectReason,
    SignatureRejected,
    VerifiedSignature,
    canonical_name,
    check_window,
    header_map,
    http_date,
    needs_body_coverage,
    parse_http_date,
)

__all__ = ["RFC9421_COMPONENTS", "parse_signature_input", "sign_rfc9421", "verify_rfc9421"]

RFC9421_COMPONENTS = ("@method", "@target-uri", "content-digest", "date")


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
        check_window(float(created), self._now, self._window, "created")
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
    hdrs = {canonical_name(k): v for k, v in header_map(headers).items()}
    hdrs.setdefault("Date", http_date(now))
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


def parse_signature_input(value: str) -> tuple[list[str], dict[str, Any]]:
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
    hdrs = header_map(headers)
    if "signature-input" not in hdrs or "signature" not in hdrs:
        raise SignatureRejected(RejectReason.UNSIGNED, "no Signature-Input/Signature headers")
    components, params = parse_signature_input(hdrs["signature-input"])
    key_id: str = params["keyid"]
    covered = set(components)
    target = ["@target-uri"] if {"@authority", "@path"} - covered else ["@authority", "@path"]
    required = ["@method", *target]
    if needs_body_coverage(method, body):
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
    check_window(float(params["created"]), now, window, "created")
    if "date" in covered:
        check_window(parse_http_date(hdrs["date"]), now, window, "Date")
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
