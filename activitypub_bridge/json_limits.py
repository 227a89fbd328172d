"""JSON from strangers, parsed within limits: size, nesting depth and digits per integer.

Python's :func:`json.loads` has none of these: a body nested a thousand levels deep raises
:class:`RecursionError` (and one a few hundred deep parses, then breaks whatever walks it
recursively), and an integer of more than 4,300 digits raises a bare :class:`ValueError`
(CPython's int-to-string guard, which also means a long one cannot even be logged).
:func:`parse_json` checks all three before or while parsing and raises one error type,
:class:`JsonRefused`, with a one-line reason, for every input it does not accept — invalid
JSON included — so a caller answers 400 with a single ``except``.

The depth is measured before parsing, on the text with its strings removed (a linear regular
expression, then one pass over the brackets left), so the parser itself never recurses past
the limit. ``NaN``/``Infinity`` (not JSON) and numbers that overflow to infinity are refused.
Used for inbox bodies and remote ActivityPub documents here, and offered to any other route
that parses JSON from outside.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_INT_DIGITS",
    "JsonRefused",
    "parse_json",
]

DEFAULT_MAX_BYTES = 1 << 20
# ActivityPub documents nest a handful of levels (activity > object > attachment > ...);
# 64 leaves room for inline JSON-LD contexts and is still far below any recursion limit.
DEFAULT_MAX_DEPTH = 64
# 40 digits hold any 128-bit integer; ids and counts in the wild are far shorter.
DEFAULT_MAX_INT_DIGITS = 40

# A JSON string (escapes included), as the unrolled loop "[^"\\]*(\\.[^"\\]*)*": linear time.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonRefused(ValueError):
    """Input that is not JSON, or JSON beyond the limits; the message says which, in one line."""


def _nesting_depth(text: str, limit: int) -> int:
    """The deepest nesting of ``[``/``{`` in ``text`` outside strings, counting stops just past
    ``limit`` (so a hostile input costs one pass at most)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: json.dumps would write it back as Infinity, not JSON
        raise JsonRefused(f"JSON number {text[:40]} is out of range")
    return value


def parse_json(
    data: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_int_digits: int = DEFAULT_MAX_INT_DIGITS,
) -> Any:
    """``data`` (UTF-8 bytes or text) as Python values, or :class:`JsonRefused`.

    Refused: more than ``max_bytes`` (UTF-8 bytes for ``bytes``, characters for ``str``),
    arrays/objects nested deeper than ``max_depth``, an integer with more than
    ``max_int_digits`` digits, ``NaN``/``Infinity``, bytes that are not UTF-8, and anything
    :func:`json.loads` refuses."""
    if len(data) > max_bytes:
        raise JsonRefused(f"JSON body of {len(data)} bytes exceeds {max_bytes}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRefused(f"JSON body is not UTF-8: {exc}") from None
    else:
        text = data
    if _nesting_depth(text, max_depth) > max_depth:
        raise JsonRefused(f"JSON nested deeper than {max_depth} levels")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_int_digits:
            raise JsonRefused(f"JSON integer longer than {max_int_digits} digits")
        return int(digits)

    try:
        return json.loads(
            text,
            parse_int=bounded_int,
            parse_float=_finite_float,
            parse_constant=_refuse_constant,
        )
    except JsonRefused:
        raise
    except json.JSONDecodeError as exc:
        raise JsonRefused(f"not JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a backstop: the checks above should hold
        raise JsonRefused(f"JSON refused: {type(exc).__name__}") from None
