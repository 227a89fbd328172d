"""The field kinds record schemas are written in.

Each kind checks one decoded DAG-CBOR value and raises :class:`RecordError` whose message starts
with the field's path (``asset.tags[3]``, ``provenance.software['ffmpeg']``), so a person can find
the bad value at once. Kinds are strict about Python types: ``True`` is not an integer, a CID
given as a string is not a link, ``None`` is not an absent optional field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from multiformats import CID

from .errors import IdentityError, RecordError
from .identity import public_key_from_did

__all__ = [
    "Field", "Text", "Integer", "Boolean", "Link", "Bytes", "OneOf", "Timestamp", "DidKey",
    "MediaType", "ListOf", "MapOf", "Struct", "AnyValue", "check_fields", "is_media_type",
    "parse_timestamp", "show_value",
]  # fmt: skip

_CBOR_INT_MIN, _CBOR_INT_MAX = -(2**64), 2**64 - 1
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")

# A media type, strictly: RFC 6838 restricted names for type and subtype (a letter or digit,
# then up to 126 of ``A-Za-z0-9!#$&-^_.+``), then at most 8 parameters, each ``;`` + at most
# one space + a restricted name + ``=`` + 1..127 restricted-name characters. No quoted
# strings, no commas, no other spaces: what a browser could read as a second type (``text/plain;
# x=y, text/html`` is text/html to Chromium) or as another header cannot be written at all.
# ASCII only (re.ASCII), so no Unicode letter passes as a token character.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_PARAMETER = rf"; ?{_RESTRICTED_NAME}=[A-Za-z0-9!#$&^_.+-]{{1,127}}"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}(?:{_PARAMETER}){{0,8}}", re.ASCII)
MEDIA_TYPE_MAX = 255


def is_media_type(value: Any) -> bool:
    """True when ``value`` is a media type this project writes, stores and serves: see
    :data:`_MEDIA_TYPE` (``video/mp4``, ``text/plain; charset=utf-8``; not ``text/plain; x=y,
    text/html``, not ``video/mp4; codecs="avc1"``)."""
    return (
        isinstance(value, str)
        and 3 <= len(value) <= MEDIA_TYPE_MAX
        and _MEDIA_TYPE.fullmatch(value) is not None
    )


def show_value(value: Any) -> str:
    """A short one-line description of a value for error messages."""
    if isinstance(value, CID):
        return f"CID {value}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{len(value)} bytes"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 80 else text[:76] + "...'"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"a map of {len(value)} entr{'y' if len(value) == 1 else 'ies'}"
    return f"a {type(value).__name__}"


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp (``2026-11-21T12:00:00Z``, fraction optional)."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"not an RFC 3339 UTC timestamp: {show_value(text)}")
    seconds, _, fraction = text[:-1].partition(".")
    moment = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment.replace(microsecond=int(fraction[:6].ljust(6, "0"))) if fraction else moment


class Field:
    """One field kind. ``optional`` fields may be absent (but never ``None``)."""

    expected = "a value"

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def fail(self, path: str, value: Any, expected: str | None = None) -> RecordError:
        return RecordError(f"{path}: expected {expected or self.expected}, got {show_value(value)}")


class Text(Field):
    def __init__(
        self,
        min_len: int = 0,
        max_len: int | None = None,
        *,
        forbid: str = "",
        pattern: str | None = None,
        optional: bool = False,
    ) -> None:
        super().__init__(optional=optional)
        self.min_len, self.max_len, self.forbid = min_len, max_len, forbid
        self.pattern = re.compile(pattern) if pattern else None
        limit = f"{min_len}..{max_len}" if max_len is not None else f"at least {min_len}"
        self.expected = f"a string of {limit} characters" if (min_len or max_len) else "a string"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise self.fail(path, value)
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise RecordError(f"{path}: expected {self.expected}, got {len(value)} characters")
        for char in self.forbid:
            if char in value:
                raise RecordError(f"{path}: must not contain {char!r}, got {show_value(value)}")
        if self.pattern and not self.pattern.fullmatch(value):
            raise RecordError(f"{path}: not a valid value: {show_value(value)}")


class Integer(Field):
    def __init__(
        self, min: int | None = None, max: int | None = None, *, optional: bool = False
    ) -> None:
        super().__init__(optional=optional)
        self.min = _CBOR_INT_MIN if min is None else min
        self.max = _CBOR_INT_MAX if max is None else max
        if max is None and min == 0:
            self.expected = "a non-negative integer"
        elif max is None and min == 1:
            self.expected = "a positive integer"
        elif min is None and max is None:
            self.expected = "an integer"
        else:
            self.expected = f"an integer in {self.min}..{self.max}"

    def check(self, value: Any, path: str) -> None:
        if type(value) is not int or not self.min <= value <= self.max:
            raise self.fail(path, value)


class Boolean(Field):
    expected = "true or false"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise self.fail(path, value)


class Link(Field):
    """A CID link (CBOR tag 42). ``codecs`` restricts what the link may point at."""

    def __init__(self, codecs: Iterable[str] | None = None, *, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.codecs = frozenset(codecs) if codecs else None
        self.expected = "a CID link"
        if self.codecs:
            self.expected = f"a {' or '.join(sorted(self.codecs))} CID link"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, str):
            raise RecordError(
                f"{path}: expected {self.expected}, got the string {show_value(value)} "
                "(links are CIDs, tag 42, never strings)"
            )
        if not isinstance(value, CID):
            raise self.fail(path, value)
        if self.codecs and value.codec.name not in self.codecs:
            raise RecordError(f"{path}: expected {self.expected}, got a {value.codec.name} CID")


class Bytes(Field):
    def __init__(self, length: int | None = None, *, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.length = length
        self.expected = f"{length} bytes" if length is not None else "bytes"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bytes) or (self.length is not None and len(value) != self.length):
            raise self.fail(path, value)


class OneOf(Field):
    """An enumeration; compares type as well as value, so ``True`` does not match ``1``."""

    def __init__(self, *values: str | int | bool, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.values = values
        self.expected = "one of " + ", ".join(repr(v) for v in values)
        if len(values) == 1:
            self.expected = repr(values[0])

    def check(self, value: Any, path: str) -> None:
        if not any(type(v) is type(value) and v == value for v in self.values):
            raise self.fail(path, value)


class Timestamp(Field):
    expected = "an RFC 3339 UTC timestamp like '2026-11-21T12:00:00Z'"

    def check(self, value: Any, path: str) -> None:
        try:
            parse_timestamp(value)
        except ValueError:
            raise self.fail(path, value) from None


class DidKey(Field):
    expected = "an Ed25519 did:key"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise self.fail(path, value)
        try:
            public_key_from_did(value)
        except IdentityError as exc:
            raise RecordError(f"{path}: {exc}") from None


class MediaType(Field):
    """A MIME type in the strict grammar of :func:`is_media_type`; every record's ``mime``
    passes here, whether our own upload made it or a peer's repo brought it."""

    expected = (
        "a media type like 'video/mp4' or 'text/plain; charset=utf-8' "
        "(RFC 6838 names; no quotes, commas or other spaces)"
    )

    def check(self, value: Any, path: str) -> None:
        if not is_media_type(value):
            raise self.fail(path, value)


class ListOf(Field):
    def __init__(
        self,
        item: Field,
        *,
        min_items: int = 0,
        max_items: int | None = None,
        optional: bool = False,
    ) -> None:
        super().__init__(optional=optional)
        self.item, self.min_items, self.max_items = item, min_items, max_items
        self.expected = "a list"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise self.fail(path, value)
        if len(value) < self.min_items:
            raise RecordError(f"{path}: expected at least {self.min_items} items, got {len(value)}")
        if self.max_items is not None and len(value) > self.max_items:
            raise RecordError(f"{path}: expected at most {self.max_items} items, got {len(value)}")
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]")


class AnyValue(Field):
    """Any value of the IPLD data model that DAG-CBOR can encode (finite floats, str keys)."""

    expected = "an IPLD value"

    def check(self, value: Any, path: str) -> None:
        if value is None or isinstance(value, bool | str | bytes | CID):
            return
        if isinstance(value, int):
            if not _CBOR_INT_MIN <= value <= _CBOR_INT_MAX:
                raise RecordError(f"{path}: integer {value} does not fit in 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise RecordError(f"{path}: DAG-CBOR has no NaN or infinity, got {value!r}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check(item, f"{path}[{index}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise RecordError(f"{path}: map keys must be strings, got {show_value(key)}")
                self.check(item, f"{path}[{key!r}]")
        else:
            raise self.fail(path, value)


class MapOf(Field):
    """A map with string keys whose values are all of one kind (any IPLD value by default)."""

    def __init__(
        self,
        value: Field | None = None,
        *,
        key: Text | None = None,
        max_entries: int | None = None,
        optional: bool = False,
    ) -> None:
        super().__init__(optional=optional)
        self.value = value or AnyValue()
        self.key = key or Text()
        self.max_entries = max_entries
        self.expected = "a map"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(path, value)
        if self.max_entries is not None and len(value) > self.max_entries:
            raise RecordError(
                f"{path}: expected at most {self.max_entries} entries, got {len(value)}"
            )
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(f"{path}: map keys must be strings, got {show_value(key)}")
            self.key.check(key, f"{path} key {key!r}")
            self.value.check(item, f"{path}[{key!r}]")


class Struct(Field):
    """A map with named fields, each of its own kind; unknown fields are refused."""

    expected = "a map"

    def __init__(self, fields: Mapping[str, Field], *, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.fields = dict(fields)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(path, value)
        check_fields(self.fields, value, path)


def check_fields(fields: Mapping[str, Field], value: dict[Any, Any], path: str) -> None:
    """Check a map against named field kinds: no unknown field, no missing required one."""
    for name in value:
        if not isinstance(name, str):
            raise RecordError(f"{path}: field names must be strings, got {show_value(name)}")
        if name not in fields:
            raise RecordError(f"{path}: unknown field {name!r}")
    for name, field in fields.items():
        if name in value:
            field.check(value[name], f"{path}.{name}")
        elif not field.optional:
            raise RecordError(f"{path}: missing required field {name!r}")
