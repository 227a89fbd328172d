"""JSON from strangers within limits (activitypub_bridge/json_limits.py): what is refused,
with one error type, and that ordinary documents (brackets inside strings included) pass."""

from __future__ import annotations

import json

import pytest

from activitypub_bridge import JsonRefused, parse_json


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"[" * 1000 + b"]" * 1000, "nested deeper than 64"),
        (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", "nested deeper than 64"),
        (b'{"n": ' + b"9" * 5000 + b"}", "longer than 40 digits"),
        (b'{"n": -' + b"1" * 41 + b"}", "longer than 40 digits"),
        (b"[1e999]", "out of range"),
        (b'{"x": NaN}', "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b'{"a": 1', "not JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b'"' + b"x" * 100 + b'"', "exceeds 64"),
    ],
)
def test_refused_with_one_error_type(data: bytes, why: str) -> None:
    with pytest.raises(JsonRefused, match=why):
        parse_json(data, max_bytes=64 if why == "exceeds 64" else 1 << 20)


def test_ordinary_documents_pass_and_strings_do_not_count_as_nesting() -> None:
    doc = {
        "@context": ["https://www.w3.org/ns/activitystreams", {"x": "[[[[{{{{"}],
        "id": "https://a.example/1",
        "n": 10**39,
        "f": -1.5e300,
        "s": 'quote \\" and [' * 100,
        "deep": json.loads("[" * 60 + "]" * 60),
    }
    text = json.dumps(doc)
    assert parse_json(text.encode()) == doc
    assert parse_json(text) == doc
    assert parse_json(b"[" * 64 + b"]" * 64, max_depth=64) is not None
    with pytest.raises(JsonRefused):
        parse_json(b"[" * 9 + b"]" * 9, max_depth=8)
    assert parse_json(b"123", max_int_digits=3) == 123
