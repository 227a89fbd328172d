"""HTTP byte ranges and entity-tag preconditions for the gateway, sans-I/O.

Everything here is a pure function of header strings and a size: which bytes a ``Range``
request gets (RFC 9110 §14), whether ``If-None-Match`` makes a 304 and whether ``If-Range`` still
allows a partial reply (§13.1). Werkzeug parses ``Range`` too, but folds "several ranges" and
"unsatisfiable" into one ``None``; the gateway answers those two differently (200 with the whole
file vs 416), so the few lines are written here, where they are tested without a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ByteRange",
    "RangeKind",
    "RangeRequest",
    "if_none_match_hits",
    "if_range_allows",
    "parse_range",
]

_SPEC = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.ASCII)  # HTTP digits only
# A position with more digits than this is past the end of any representation (10**18 bytes is
# an exabyte), so it is read as "beyond" without int(), which refuses strings of over 4,300
# digits (a ValueError that used to answer 500).
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


class RangeKind(Enum):
    FULL = "full"  # no usable Range header (absent, malformed, another unit, several ranges)
    PARTIAL = "partial"  # 206 with ``range``
    UNSATISFIABLE = "unsatisfiable"  # 416 with ``Content-Range: bytes */size``


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` up to, not including, ``stop``."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


@dataclass(frozen=True, slots=True)
class RangeRequest:
    kind: RangeKind
    range: ByteRange

    @property
    def status(self) -> int:
        return {RangeKind.FULL: 200, RangeKind.PARTIAL: 206, RangeKind.UNSATISFIABLE: 416}[
            self.kind
        ]


def parse_range(header: str | None, size: int, *, max_bytes: int | None = None) -> RangeRequest:
    """What a ``Range`` header asks of a representation of ``size`` bytes.

    A single range is served as asked (first-last, ``N-`` open-ended, ``-N`` suffix); a range
    that starts at or past the end is unsatisfiable. Several ranges, another unit or a
    malformed header give the whole representation, which RFC 9110 permits. ``max_bytes``
    shortens a long range: the reply's ``Content-Range`` tells the client what it got, and media
    players ask again for the rest.
    """
    whole = RangeRequest(RangeKind.FULL, ByteRange(0, size))
    if not header:
        return whole
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return whole
    parts = [p for p in spec.split(",") if p.strip()]
    if len(parts) != 1:
        return whole
    match = _SPEC.fullmatch(parts[0])
    if match is None or not (match.group(1) or match.group(2)):
        return whole
    first, last = _position(match.group(1)), _position(match.group(2))
    unsatisfiable = RangeRequest(RangeKind.UNSATISFIABLE, ByteRange(0, 0))
    if first is None:  # suffix: the last N bytes
        assert last is not None
        if last == 0 or size == 0:
            return unsatisfiable
        start, stop = max(0, size - last), size
    else:
        start = first
        if last is not None and last < start:
            return whole  # invalid: RFC 9110 says ignore it
        if start >= size:
            return unsatisfiable
        stop = size if last is None else min(last + 1, size)
    if max_bytes is not None and stop - start > max_bytes:
        stop = start + max(1, max_bytes)
    return RangeRequest(RangeKind.PARTIAL, ByteRange(start, stop))


def _position(digits: str) -> int | None:
    """A byte position from ASCII digits (None when empty), capped at :data:`_BEYOND`."""
    if not digits:
        return None
    significant = digits.lstrip("0") or "0"
    return _BEYOND if len(significant) > _MAX_DIGITS else int(significant)


def _etags(header: str) -> list[tuple[bool, str]]:
    """(weak, opaque-tag) for each entity tag of a list; malformed text ends the list."""
    out: list[tuple[bool, str]] = []
    pos = 0
    while pos < len(header):
        match = _ETAG.match(header, pos)
        if match is None or match.end() == pos:
            break
        out.append((bool(match.group(1)), match.group(2)))
        pos = match.end()
    return out


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (weak comparison) or is ``*``: answer 304."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(tag == mine for _weak, tag in _etags(header))


def if_range_allows(header: str | None, etag: str) -> bool:
    """True when a ``Range`` may be honoured: no ``If-Range``, or one naming ``etag`` strongly.
    A date (we send no ``Last-Modified``) or another tag means: send the whole representation."""
    if header is None:
        return True
    if etag.startswith("W/"):
        return False
    tags = _etags(header.strip())
    return len(tags) == 1 and not tags[0][0] and tags[0][1] == etag
