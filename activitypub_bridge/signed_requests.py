"""What both HTTP Signature forms share: the rejection reasons and error, what a verified
signature vouches for, and the header, URL and clock helpers both the draft-cavage and the
RFC 9421 code build on. :mod:`activitypub_bridge.http_signatures` says how the forms differ and
re-exports the public names.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = [
    "ACTIVITY_JSON",
    "DEFAULT_WINDOW_S",
    "Headers",
    "KeyLookup",
    "RejectReason",
    "SignatureRejected",
    "SignedRequest",
    "VerifiedSignature",
    "canonical_name",
    "check_window",
    "header_map",
    "host_of",
    "http_date",
    "needs_body_coverage",
    "parse_http_date",
    "path_with_query",
]

DEFAULT_WINDOW_S = 3600.0
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


def header_map(headers: Headers) -> dict[str, str]:
    """Lower-cased names; repeated field lines joined with ", " (RFC 9110 section 5.3)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key, val = name.lower(), value.strip()
        out[key] = f"{out[key]}, {val}" if key in out else val
    return out


def host_of(url: str) -> str:
    """The ``Host`` a request to ``url`` carries (the port only when not the default)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"not an absolute URL: {url!r}")
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def path_with_query(url: str) -> str:
    """The request target of ``url``: its path (``/`` when empty) and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def http_date(now: float) -> str:
    """An HTTP ``Date`` value (RFC 9110 IMF-fixdate) for Unix time ``now``."""
    return email.utils.formatdate(now, usegmt=True)


def check_window(created: float, now: float, window: float, what: str) -> None:
    """Reject (``STALE_DATE``) a signing time further than ``window`` seconds from ``now``."""
    if abs(created - now) > window:
        direction = "future" if created > now else "past"
        raise SignatureRejected(
            RejectReason.STALE_DATE,
            f"{what} is {abs(created - now):.0f} s in the {direction} (window ±{window:.0f} s)",
        )


def parse_http_date(value: str) -> float:
    """Unix seconds of an HTTP ``Date`` value; ``STALE_DATE`` when it cannot be read."""
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):  # a day of 10**15: Overflow
        shown = value[:100]
        raise SignatureRejected(RejectReason.STALE_DATE, f"unparseable Date {shown!r}") from None


def canonical_name(name: str) -> str:
    """``content-type`` -> ``Content-Type``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def needs_body_coverage(method: str, body: bytes | None) -> bool:
    """Whether a signature must cover the body (a digest): any body, or an empty one sent by a
    method that carries one."""
    return body is not None and (bool(body) or method.upper() in {"POST", "PUT", "PATCH"})
