"""Pin requests of the IPFS Pinning Service API: what a request holds and the pure checks of
what clients send (``POST /pins`` bodies, ``GET /pins`` query parameters); their SQLite store
is :mod:`daemon.core.pinning_api.request_store`.

The checks are pure functions over plain values (JSON bodies, query dicts): they either return
a validated value or raise :class:`PinRequestError`, whose message the routes send back as the
spec's ``Failure`` (``{"error": {"reason": "BAD_REQUEST", "details": message}}``).

Statuses move ``queued -> pinning -> pinned | failed``; ``pinning`` goes back to ``queued``
when the daemon restarts (the fetch resumes where the store left off). Each request belongs to
the token (by name) that created it; API calls see only their token's requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from activitypub_bridge import JsonRefused, parse_json
from dag import CID, cid_to_str, parse_cid
from dag.errors import CidError

__all__ = [
    "MATCHES",
    "MAX_META_ENTRIES",
    "MAX_NAME",
    "MAX_ORIGINS",
    "STATUSES",
    "ListQuery",
    "PendingLimitReached",
    "PinLimits",
    "PinRequest",
    "PinRequestError",
    "PinSpec",
    "epoch_ms",
    "format_created",
    "meta_bytes",
    "now_ms",
    "parse_list_query",
    "parse_pin_body",
    "parse_rfc3339_ms",
]

STATUSES = ("queued", "pinning", "pinned", "failed")
MATCHES = ("exact", "iexact", "partial", "ipartial")
MAX_NAME = 255
MAX_ORIGINS = 20
MAX_ORIGIN_CHARS = 1024
MAX_META_ENTRIES = 1000
MAX_META_KEY = 255
MAX_META_VALUE = 4096
MAX_META_BYTES = 4096  # the default of [pinning] max_meta_bytes
MAX_META_QUERY_CHARS = 64 * 1024  # GET /pins?meta=: checked before parsing
MAX_LIST_CIDS = 10
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
FETCHABLE_CODECS = ("raw", "dag-pb", "dag-cbor")


class PinRequestError(ValueError):
    """A client sent a value the Pinning Service API does not allow (an HTTP 400)."""


class PendingLimitReached(Exception):
    """The token already has as many requests queued or pinning as it may (an HTTP 429)."""

    def __init__(self, owner: str, pending: int, limit: int) -> None:
        super().__init__(
            f"token {owner!r} has {pending} pin requests queued or pinning; at most {limit} "
            "at once: retry when some have settled"
        )
        self.pending = pending
        self.limit = limit


@dataclass(frozen=True, slots=True)
class PinLimits:
    """What one request may hold (``[pinning] max_name_chars`` and ``max_meta_bytes``)."""

    max_name: int = MAX_NAME
    max_meta_bytes: int = MAX_META_BYTES


@dataclass(frozen=True, slots=True)
class PinSpec:
    """A validated ``Pin`` object: what a client asks to pin."""

    cid: str  # as the client sent it (echoed back)
    name: str | None = None
    origins: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> CID:
        return parse_cid(self.cid)

    @property
    def key(self) -> str:
        """The canonical text of the CID: what requests for the same content share."""
        return cid_to_str(self.root)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cid": self.cid}
        if self.name is not None:
            out["name"] = self.name
        if self.origins:
            out["origins"] = list(self.origins)
        if self.meta:
            out["meta"] = dict(self.meta)
        return out


@dataclass(frozen=True, slots=True)
class PinRequest:
    requestid: str
    pin: PinSpec
    status: str
    created_ms: int  # milliseconds since the epoch, UTC; unique per store
    owner: str  # the name of the token that created it
    info: dict[str, str] = field(default_factory=dict)
    releases: tuple[str, ...] = ()  # CID keys whose remote pin ends when this one settles

    @property
    def created(self) -> str:
        return format_created(self.created_ms)

    def to_json(self, delegates: Sequence[str]) -> dict[str, Any]:
        """The spec's ``PinStatus`` object."""
        return {
            "requestid": self.requestid,
            "status": self.status,
            "created": self.created,
            "pin": self.pin.to_json(),
            "delegates": list(delegates),
            "info": dict(self.info),
        }


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Validated ``GET /pins`` filters."""

    cids: tuple[str, ...] = ()  # canonical CID keys
    name: str | None = None
    match: str = "exact"
    statuses: tuple[str, ...] = ("pinned",)
    before_ms: int | None = None
    after_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    meta: dict[str, str] = field(default_factory=dict)


# -- time ---------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def format_created(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, as the spec's examples: ``2020-07-27T17:32:28.276Z``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339_ms(text: str, what: str = "timestamp") -> int:
    """Milliseconds since the epoch of an RFC 3339 date-time (section 5.6); sub-millisecond
    digits are dropped, a leap second (``:60``) counts as the second before it."""
    m = _RFC3339.match(text)
    if m is None:
        raise PinRequestError(
            f"{what} must be an RFC 3339 date-time like 2020-07-27T17:32:28.276Z, got {text[:60]!r}"
        )
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    fraction = (m.group(7) or ".0")[1:]
    zone = m.group(8)
    try:
        moment = datetime(
            max(year, 1),  # year 0000 is RFC 3339 but not Python: the earliest time either way
            month,
            day,
            hour,
            minute,
            min(second, 59),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise PinRequestError(f"{what} {text[:60]!r} is not a valid date-time: {exc}") from None
    ms = epoch_ms(moment)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise PinRequestError(f"{what} {text[:60]!r} has a bad UTC offset")
        ms -= sign * (hours * 60 + minutes) * 60_000
    return ms


def now_ms() -> int:
    """Milliseconds since the epoch, now (what ``created`` counts)."""
    return epoch_ms(datetime.now(UTC))


def epoch_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# -- POST bodies ------------------------------------------------------------------------------


def _check_cid(value: Any, what: str = "cid") -> CID:
    if not isinstance(value, str):
        raise PinRequestError(f"{what} must be a string, got {type(value).__name__}")
    try:
        cid = parse_cid(value)
    except CidError as exc:
        raise PinRequestError(f"{what}: {exc}") from None
    if cid.codec.name not in FETCHABLE_CODECS:
        raise PinRequestError(
            f"{what} {value[:80]!r} has codec {cid.codec.name}; this service pins "
            + ", ".join(FETCHABLE_CODECS)
        )
    return cid


def meta_bytes(meta: Mapping[str, str]) -> int:
    """The size of ``meta`` as stored: compact JSON, UTF-8."""
    text = json.dumps(dict(meta), separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


def _check_meta(value: Any, what: str = "meta") -> dict[str, str]:
    if not isinstance(value, dict):
        raise PinRequestError(f"{what} must be an object of strings, got {type(value).__name__}")
    if len(value) > MAX_META_ENTRIES:
        raise PinRequestError(f"{what} has {len(value)} entries; at most {MAX_META_ENTRIES}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise PinRequestError(
                f"{what}[{key[:40]!r}] must be a string, got {type(item).__name__}"
            )
        if len(key) > MAX_META_KEY:
            raise PinRequestError(f"{what} key {key[:40]!r}... is over {MAX_META_KEY} characters")
        if len(item) > MAX_META_VALUE:
            raise PinRequestError(f"{what}[{key[:40]!r}] is over {MAX_META_VALUE} characters")
    return dict(value)


def parse_pin_body(body: Any, limits: PinLimits = PinLimits()) -> PinSpec:
    """A ``Pin`` object from a decoded JSON body, or :class:`PinRequestError` naming what is
    wrong. Origins are kept as given (any string): dialling them is best effort (the spec:
    "dial failure should not fail the pinning operation"), and only public addresses are
    dialled (:mod:`daemon.core.pinning_api.origins`)."""
    if not isinstance(body, dict):
        raise PinRequestError("the body must be a JSON object (a Pin: cid, name, origins, meta)")
    if "cid" not in body:
        raise PinRequestError("cid is required")
    cid = body["cid"]
    _check_cid(cid)
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise PinRequestError(f"name must be a string, got {type(name).__name__}")
        if len(name) > limits.max_name:
            raise PinRequestError(f"name is {len(name)} characters; at most {limits.max_name}")
    origins = body.get("origins")
    if origins is None:
        origins = []
    if not isinstance(origins, list):
        raise PinRequestError(f"origins must be a list of multiaddrs, got {type(origins).__name__}")
    if len(origins) > MAX_ORIGINS:
        raise PinRequestError(f"origins has {len(origins)} entries; at most {MAX_ORIGINS}")
    for origin in origins:
        if not isinstance(origin, str):
            raise PinRequestError(f"each origin must be a string, got {type(origin).__name__}")
        if len(origin) > MAX_ORIGIN_CHARS:
            raise PinRequestError(f"an origin is over {MAX_ORIGIN_CHARS} characters")
    if len(set(origins)) != len(origins):
        raise PinRequestError("origins must not repeat an address")
    meta = {} if body.get("meta") is None else _check_meta(body["meta"])
    size = meta_bytes(meta)
    if size > limits.max_meta_bytes:
        raise PinRequestError(
            f"meta is {size} bytes as JSON; this service keeps at most {limits.max_meta_bytes}"
        )
    return PinSpec(cid=cid, name=name, origins=tuple(origins), meta=meta)


# -- GET /pins query ----------------------------------------------------------------------------


def _comma_list(text: str, what: str) -> list[str]:
    items = text.split(",")
    if any(not item for item in items):
        raise PinRequestError(f"{what} must be a comma-separated list without empty items")
    return items


def parse_list_query(args: Mapping[str, str]) -> ListQuery:
    """Filters of ``GET /pins`` from its query parameters (one value each; the spec's arrays
    are comma-separated), or :class:`PinRequestError` naming the bad parameter."""
    query = ListQuery()
    if "cid" in args:
        given = _comma_list(args["cid"], "cid")
        if len(given) > MAX_LIST_CIDS:
            raise PinRequestError(f"cid lists {len(given)} CIDs; at most {MAX_LIST_CIDS}")
        query = replace(query, cids=tuple(cid_to_str(_check_cid(c)) for c in given))
    if "name" in args:
        name = args["name"]
        if len(name) > MAX_NAME:
            raise PinRequestError(f"name is {len(name)} characters; at most {MAX_NAME}")
        query = replace(query, name=name)
    if "match" in args:
        if args["match"] not in MATCHES:
            raise PinRequestError(
                f"match must be one of {', '.join(MATCHES)}, got {args['match'][:40]!r}"
            )
        query = replace(query, match=args["match"])
    if "status" in args:
        statuses = _comma_list(args["status"], "status")
        for status in statuses:
            if status not in STATUSES:
                raise PinRequestError(
                    f"status must be among {', '.join(STATUSES)}, got {status[:40]!r}"
                )
        if len(set(statuses)) != len(statuses):  # the spec's uniqueItems
            raise PinRequestError("status names a value more than once")
        query = replace(query, statuses=tuple(statuses))
    if "before" in args:
        query = replace(query, before_ms=parse_rfc3339_ms(args["before"], "before"))
    if "after" in args:
        query = replace(query, after_ms=parse_rfc3339_ms(args["after"], "after"))
    if "limit" in args:
        text = args["limit"]
        # ASCII digits and blanks only: int() refuses the other characters str.strip() and \d
        # take (\x1c-\x1f, other scripts' digits), a 500 found by bench/fuzz.py
        if not re.fullmatch(r"[ \t]*[+-]?[0-9]{1,12}[ \t]*", text):
            raise PinRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {text!r}")
        limit = int(text)
        if not 1 <= limit <= MAX_LIMIT:
            raise PinRequestError(f"limit must be from 1 to {MAX_LIMIT}, got {limit}")
        query = replace(query, limit=limit)
    if "meta" in args:
        try:  # bounded: a deep nesting or a 5,000-digit integer is a 400, not a crash
            meta = parse_json(args["meta"], max_bytes=MAX_META_QUERY_CHARS, max_depth=2)
        except JsonRefused as exc:
            raise PinRequestError(f"meta must be a JSON object of strings: {exc}") from None
        query = replace(query, meta=_check_meta(meta))
    return query
