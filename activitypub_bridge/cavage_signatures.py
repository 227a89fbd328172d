"""draft-cavage-http-signatures-12, Mastodon's form, written here by hand (no maintained PyPI
library covers the draft): the signing string of draft section 2.3 over the covered headers,
RSASSA-PKCS1-v1_5/SHA-256, and the RFC 3230 ``Digest`` of a body. See
:mod:`activitypub_bridge.http_signatures`, which re-exports the public names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
    host_of,
    http_date,
    needs_body_coverage,
    parse_http_date,
    path_with_query,
)

__all__ = [
    "CAVAGE_GET_HEADERS",
    "CAVAGE_POST_HEADERS",
    "parse_cavage_params",
    "sign_cavage",
    "verify_cavage",
]

CAVAGE_POST_HEADERS = ("(request-target)", "host", "date", "digest", "content-type")
CAVAGE_GET_HEADERS = ("(request-target)", "host", "date", "accept")


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
    out = header_map(headers)
    out["host"] = host_of(url)
    out.setdefault("date", http_date(time.time() if now is None else now))
    if body is not None:
        out["digest"] = _sha256_digest(body)
        out.setdefault("content-type", ACTIVITY_JSON)
        names = list(CAVAGE_POST_HEADERS)
    else:
        names = [n for n in CAVAGE_GET_HEADERS if n != "accept" or "accept" in out]
    signing_string = _cavage_signing_string(names, method, path_with_query(url), out)
    signature = private_key.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    out["signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return {canonical_name(k): v for k, v in out.items()}


_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|(\d+))\s*(?:,|$)')


def parse_cavage_params(value: str) -> dict[str, str]:
    """The parameters of a ``Signature`` (or ``Authorization: Signature``) value; ``keyId``
    and ``signature`` must be there."""
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
    hdrs = header_map(headers)
    raw = hdrs.get("signature") or hdrs.get("authorization", "")
    if not raw or ("signature" not in hdrs and not raw.lower().startswith("signature ")):
        raise SignatureRejected(RejectReason.UNSIGNED, "no Signature header")
    params = parse_cavage_params(raw)
    key_id = params["keyId"]
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in {"rsa-sha256", "hs2019"}:
        raise SignatureRejected(RejectReason.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    names = params.get("headers", "date").lower().split()
    required = ["(request-target)", "host", "date"]
    if needs_body_coverage(method, body):
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
    created = parse_http_date(hdrs["date"])
    check_window(created, now, window, "Date")
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
