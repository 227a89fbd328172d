"""Pin requests of the IPFS Pinning Service API: what a request holds, the pure checks of what
clients send (``POST /pins`` bodies, ``GET /pins`` query parameters), and their SQLite store.

The checks are pure functions over plain values (JSON bodies, query dicts): they either return
a validated value or raise :class:`PinRequestError`, whose message the routes send back as the
spec's ``Failure`` (``{"error": {"reason": "BAD_REQUEST", "details": message}}``). The store
is blocking (sqlite via :func:`dag.sqlite_db.open_sqlite`), guarded by a lock; the service calls
it from worker threads.

Statuses move ``queued -> pinning -> pinned | failed``; ``pinning`` goes back to ``queued``
when the daemon restarts (the fetch resumes where the store left off). Each request belongs to
the token (by name) that created it; API calls see only their token's requests.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from activitypub_bridge import JsonRefused, parse_json
from dag import CID, cid_to_str, parse_cid
from dag.errors import CidError
from dag.sqlite_db import open_sqlite

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
    "PinRequestStore",
    "PinSpec",
    "format_created",
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
    ms = _epoch_ms(moment)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise PinRequestError(f"{what} {text[:60]!r} has a bad UTC offset")
        ms -= sign * (hours * 60 + minutes) * 60_000
    return ms


def _epoch_ms(moment: datetime) -> int:
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


# -- the store ---------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pin_requests (
    requestid TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    cid TEXT NOT NULL,
    cid_key TEXT NOT NULL,
    name TEXT,
    origins TEXT NOT NULL DEFAULT '[]',
    meta TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL UNIQUE,
    info TEXT NOT NULL DEFAULT '{}',
    releases TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS pin_requests_owner_created ON pin_requests (owner, created_ms);
CREATE INDEX IF NOT EXISTS pin_requests_cid_key ON pin_requests (cid_key);
CREATE INDEX IF NOT EXISTS pin_requests_status ON pin_requests (status, created_ms);
"""

_COLUMNS = "requestid, owner, cid, name, origins, meta, status, created_ms, info, releases"


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


def _now_ms() -> int:
    return _epoch_ms(datetime.now(UTC))


def new_requestid() -> str:
    """Random and url-safe (128 bits), so request ids cannot be guessed or collide."""
    return secrets.token_urlsafe(16)


class PinRequestStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._conn = open_sqlite(path)
        self._conn.create_function("casefold", 1, _casefold, deterministic=True)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _row(row: tuple[Any, ...]) -> PinRequest:
        requestid, owner, cid, name, origins, meta, status, created_ms, info, releases = row
        return PinRequest(
            requestid=requestid,
            pin=PinSpec(
                cid=cid, name=name, origins=tuple(json.loads(origins)), meta=json.loads(meta)
            ),
            status=status,
            created_ms=created_ms,
            owner=owner,
            info=json.loads(info),
            releases=tuple(json.loads(releases)),
        )

    def add(
        self,
        pin: PinSpec,
        *,
        owner: str,
        releases: Sequence[str] = (),
        now_ms: int | None = None,
        max_pending: int | None = None,
        replacing: str | None = None,
    ) -> PinRequest:
        """Store a new ``queued`` request. ``created`` is unique across the store (a later
        request made in the same millisecond gets the next one), as pagination needs.

        With ``max_pending``, :class:`PendingLimitReached` if ``owner`` already has that many
        requests queued or pinning (not counting ``replacing``, the request this one takes
        the place of); the count and the insert are one transaction."""
        with self._lock, self._conn:
            if max_pending is not None:
                (pending,) = self._conn.execute(
                    "SELECT COUNT(*) FROM pin_requests WHERE owner = ?"
                    " AND status IN ('queued', 'pinning') AND requestid != ?",
                    (owner, replacing or ""),
                ).fetchone()
                if pending >= max_pending:
                    raise PendingLimitReached(owner, pending, max_pending)
            (last,) = self._conn.execute("SELECT MAX(created_ms) FROM pin_requests").fetchone()
            created = now_ms if now_ms is not None else _now_ms()
            if last is not None and created <= last:
                created = last + 1
            request = PinRequest(
                requestid=new_requestid(),
                pin=pin,
                status="queued",
                created_ms=created,
                owner=owner,
                releases=tuple(dict.fromkeys(releases)),
            )
            self._conn.execute(
                "INSERT INTO pin_requests (requestid, owner, cid, cid_key, name, origins, meta,"
                " status, created_ms, info, releases) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    request.requestid,
                    owner,
                    pin.cid,
                    pin.key,
                    pin.name,
                    json.dumps(list(pin.origins)),
                    json.dumps(pin.meta),
                    "queued",
                    created,
                    "{}",
                    json.dumps(list(request.releases)),
                ),
            )
        return request

    def get(self, requestid: str, owner: str | None = None) -> PinRequest | None:
        sql = f"SELECT {_COLUMNS} FROM pin_requests WHERE requestid = ?"
        params: list[Any] = [requestid]
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return None if row is None else self._row(row)

    def set_status(
        self, requestid: str, status: str, info: Mapping[str, str] | None = None
    ) -> bool:
        """Move a request to ``status`` (False if it no longer exists)."""
        if status not in STATUSES:
            raise ValueError(f"unknown pin request status {status!r}")
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "UPDATE pin_requests SET status = ?, info = ? WHERE requestid = ?",
                (status, json.dumps(dict(info or {})), requestid),
            )
        return cursor.rowcount == 1

    def clear_releases(self, requestid: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE pin_requests SET releases = '[]' WHERE requestid = ?", (requestid,)
            )

    def delete(self, requestid: str) -> PinRequest | None:
        """Remove a request; returns what it was (None if there was none)."""
        with self._lock, self._conn:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM pin_requests WHERE requestid = ?", (requestid,)
            ).fetchone()
            if row is None:
                return None
            self._conn.execute("DELETE FROM pin_requests WHERE requestid = ?", (requestid,))
        return self._row(row)

    def still_wanted(self, cid_key: str) -> bool:
        """Whether some request still needs ``cid_key`` pinned: one not failed, or one whose
        settling is to release it (a replacement in progress)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM pin_requests WHERE cid_key = ? AND status != 'failed'"
                " UNION ALL SELECT 1 FROM pin_requests AS r, json_each(r.releases) AS j"
                " WHERE j.value = ? LIMIT 1",
                (cid_key, cid_key),
            ).fetchone()
        return row is not None

    def requeue_interrupted(self) -> int:
        """``pinning`` back to ``queued`` (the daemon stopped during the fetch)."""
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "UPDATE pin_requests SET status = 'queued', info = '{}' WHERE status = 'pinning'"
            )
        return cursor.rowcount

    def queued(self, limit: int = 100, exclude: Sequence[str] = ()) -> list[PinRequest]:
        """Queued requests, oldest first."""
        marks = ",".join("?" * len(exclude))
        sql = f"SELECT {_COLUMNS} FROM pin_requests WHERE status = 'queued'"
        if exclude:
            sql += f" AND requestid NOT IN ({marks})"
        sql += " ORDER BY created_ms LIMIT ?"
        with self._lock:
            rows = self._conn.execute(sql, [*exclude, limit]).fetchall()
        return [self._row(r) for r in rows]

    def queued_heads(self, per_owner: int, exclude: Sequence[str] = ()) -> list[PinRequest]:
        """The ``per_owner`` oldest queued requests of every token (not those in ``exclude``),
        oldest first: what the fair scheduler (:mod:`daemon.core.pinning_api.schedule`) chooses
        from,
        however many requests one token has queued."""
        marks = ",".join("?" * len(exclude))
        inner = f"SELECT {_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY owner ORDER BY created_ms)"
        inner += " AS position FROM pin_requests WHERE status = 'queued'"
        if exclude:
            inner += f" AND requestid NOT IN ({marks})"
        sql = f"SELECT {_COLUMNS} FROM ({inner}) WHERE position <= ? ORDER BY created_ms"
        with self._lock:
            rows = self._conn.execute(sql, [*exclude, per_owner]).fetchall()
        return [self._row(r) for r in rows]

    def list(self, query: ListQuery, owner: str | None = None) -> tuple[int, list[PinRequest]]:
        """(how many match, the newest ``query.limit`` of them, newest first)."""
        where: list[str] = []
        params: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if query.cids:
            where.append(f"cid_key IN ({','.join('?' * len(query.cids))})")
            params.extend(query.cids)
        if query.name is not None:
            where.append(
                {
                    "exact": "name = ?",
                    "iexact": "casefold(name) = casefold(?)",
                    "partial": "instr(name, ?) > 0",
                    "ipartial": "instr(casefold(name), casefold(?)) > 0",
                }[query.match]
            )
            params.append(query.name)
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(query.statuses)
        if query.before_ms is not None:
            where.append("created_ms < ?")
            params.append(query.before_ms)
        if query.after_ms is not None:
            where.append("created_ms > ?")
            params.append(query.after_ms)
        for key, value in query.meta.items():
            where.append(
                "EXISTS (SELECT 1 FROM json_each(pin_requests.meta) AS m"
                " WHERE m.key = ? AND m.value = ?)"
            )
            params.extend([key, value])
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            (count,) = self._conn.execute(
                f"SELECT COUNT(*) FROM pin_requests{clause}", params
            ).fetchone()
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM pin_requests{clause} ORDER BY created_ms DESC LIMIT ?",
                [*params, query.limit],
            ).fetchall()
        return count, [self._row(r) for r in rows]
