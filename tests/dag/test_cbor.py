"""Strict DAG-CBOR (dag.encode_dagcbor / dag.decode_dagcbor) and the DAG-JSON view.

Expected bytes are written out by hand from RFC 8949 / the DAG-CBOR spec (canonical, length-first
key order, minimal integer heads, 64-bit floats only, tag 42 for CIDs), never produced by the
code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct

import pytest
from multiformats import CID, multihash

import dag
from dag import CodecError


def _cid(data: bytes, codec: str = "raw", version: int = 1) -> CID:
    mh = multihash.digest(data, "sha2-256")
    if version == 0:
        return CID("base58btc", 0, "dag-pb", mh)
    return CID("base32", 1, codec, mh)


def _assert_one_line_codec_error(exc: BaseException) -> None:
    assert isinstance(exc, CodecError)
    assert isinstance(exc, ValueError)
    text = str(exc)
    assert text.strip()
    assert "\n" not in text, text
    assert "\r" not in text, text


def _text(s: str) -> bytes:
    raw = s.encode()
    assert len(raw) < 24
    return bytes([0x60 | len(raw)]) + raw


# ---------------------------------------------------------------------------- decode: strictness

BAD_ENCODINGS = {
    # {"bb": 1, "a": 2}: longer key first (not canonical in any order)
    "keys-unsorted": bytes([0xA2]) + _text("bb") + b"\x01" + _text("a") + b"\x02",
    # {"aa": 1, "b": 2}: bytewise order but DAG-CBOR wants length-first ("b" < "aa")
    "keys-bytewise-not-length-first": bytes([0xA2]) + _text("aa") + b"\x01" + _text("b") + b"\x02",
    "keys-same-length-unsorted": bytes([0xA2]) + _text("b") + b"\x01" + _text("a") + b"\x02",
    "duplicate-key": bytes([0xA2]) + _text("a") + b"\x01" + _text("a") + b"\x02",
    "float16": b"\xf9\x3c\x00",  # 1.0 as half float
    "float32": b"\xfa" + struct.pack(">f", 1.5),
    "float64-nan": b"\xfb" + struct.pack(">d", math.nan),
    "float64-inf": b"\xfb" + struct.pack(">d", math.inf),
    "float64-neg-inf": b"\xfb" + struct.pack(">d", -math.inf),
    "int-map-key": b"\xa1\x01\x02",
    "bytes-map-key": b"\xa1\x41k\x01",
    "int-5-in-1-byte": b"\x18\x05",
    "int-16-in-2-bytes": b"\x19\x00\x10",
    "int-255-in-4-bytes": b"\x1a\x00\x00\x00\xff",
    "int-1-in-8-bytes": b"\x1b" + (1).to_bytes(8, "big"),
    "neg-int-over-long": b"\x38\x00",  # -1 needs no argument byte
    "string-length-over-long": b"\x78\x01a",
    "array-length-over-long": b"\x98\x01\x01",
    "trailing-byte": b"\x01\x02",
    "trailing-after-map": b"\xa0\x00",
    "indefinite-array": b"\x9f\x01\xff",
    "indefinite-string": b"\x7f\x61a\xff",
    "undefined": b"\xf7",
    "simple-value": b"\xf0",
    "tag-other-than-42": b"\xc1\x01",
    "tag-42-not-bytes": b"\xd8\x2a\x01",
    "tag-42-no-multibase-prefix": b"\xd8\x2a\x44\x01\x02\x03\x04",
    "invalid-utf8": b"\x62\xff\xfe",
    "truncated-string": b"\x62a",
    "truncated-head": b"\x19\x01",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(BAD_ENCODINGS))
def test_decode_rejects_non_canonical_or_malformed(name):
    with pytest.raises(CodecError) as info:
        dag.decode_dagcbor(BAD_ENCODINGS[name])
    _assert_one_line_codec_error(info.value)


def test_decode_error_mentions_what_is_wrong():
    with pytest.raises(CodecError) as info:
        dag.decode_dagcbor(BAD_ENCODINGS["float32"])
    assert "float" in str(info.value).lower()
    with pytest.raises(CodecError) as info:
        dag.decode_dagcbor(BAD_ENCODINGS["keys-bytewise-not-length-first"])
    assert "order" in str(info.value).lower() or "sort" in str(info.value).lower()


def test_decode_accepts_the_canonical_forms_of_the_bad_ones():
    assert dag.decode_dagcbor(bytes([0xA2]) + _text("b") + b"\x02" + _text("aa") + b"\x01") == {
        "aa": 1,
        "b": 2,
    }
    assert dag.decode_dagcbor(b"\x05") == 5
    assert dag.decode_dagcbor(b"\x18\x18") == 24
    assert dag.decode_dagcbor(b"\x19\x01\x00") == 256
    assert dag.decode_dagcbor(b"\x20") == -1
    assert dag.decode_dagcbor(b"\xfb" + struct.pack(">d", 1.5)) == 1.5
    assert dag.decode_dagcbor(b"\x1b" + (2**64 - 1).to_bytes(8, "big")) == 2**64 - 1
    assert dag.decode_dagcbor(b"\x3b" + (2**64 - 1).to_bytes(8, "big")) == -(2**64)


# ---------------------------------------------------------------------------- encode: strictness

BAD_VALUES = {
    "nan": math.nan,
    "inf": math.inf,
    "neg-inf": -math.inf,
    "nested-nan": {"a": [1, {"b": math.nan}]},
    "tuple": (1, 2),
    "nested-tuple": {"a": (1,)},
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "int-key": {1: "x"},
    "bytes-key": {b"k": 1},
    "none-key": {None: 1},
    "object": object(),
    "bytearray": bytearray(b"x"),
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_encode_rejects_non_ipld_values(name):
    with pytest.raises(CodecError) as info:
        dag.encode_dagcbor(BAD_VALUES[name])
    _assert_one_line_codec_error(info.value)


@pytest.mark.parametrize("value", [2**64, -(2**64) - 1, {"n": 2**70}])
def test_encode_out_of_range_integer_is_a_codec_error(value):
    # DAG-CBOR integers are limited to [-2**64, 2**64 - 1]; the error must still be a CodecError.
    with pytest.raises(CodecError) as info:
        dag.encode_dagcbor(value)
    _assert_one_line_codec_error(info.value)


# ---------------------------------------------------------------------------- encode: exact bytes


def test_encode_sorts_keys_length_first():
    # RFC 7049 canonical order as DAG-CBOR requires: shorter keys first, then bytewise.
    value = {"aa": 1, "b": 2, "a": 3, "ab": 4}
    expected = (
        bytes([0xA4])
        + _text("a")
        + b"\x03"
        + _text("b")
        + b"\x02"
        + _text("aa")
        + b"\x01"
        + _text("ab")
        + b"\x04"
    )
    assert dag.encode_dagcbor(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"\x00"),
        (23, b"\x17"),
        (24, b"\x18\x18"),
        (255, b"\x18\xff"),
        (256, b"\x19\x01\x00"),
        (65536, b"\x1a\x00\x01\x00\x00"),
        (2**32, b"\x1b\x00\x00\x00\x01\x00\x00\x00\x00"),
        (-1, b"\x20"),
        (-25, b"\x38\x18"),
        (1.5, b"\xfb" + struct.pack(">d", 1.5)),
        (1.0, b"\xfb" + struct.pack(">d", 1.0)),  # even exactly-representable floats use 64 bits
        (True, b"\xf5"),
        (False, b"\xf4"),
        (None, b"\xf6"),
        (b"\x00\x01", b"\x42\x00\x01"),
        ("é", b"\x62\xc3\xa9"),
        ([], b"\x80"),
        ({}, b"\xa0"),
    ],
)
def test_encode_minimal_heads_and_64_bit_floats(value, expected):
    assert dag.encode_dagcbor(value) == expected


def test_encode_cid_as_tag_42_with_identity_multibase_prefix():
    cid = _cid(b"x")
    raw = bytes(cid)
    body = b"\x00" + raw
    assert len(body) < 256
    assert dag.encode_dagcbor(cid) == b"\xd8\x2a\x58" + bytes([len(body)]) + body


# ---------------------------------------------------------------------------- round trips


def _nested_value():
    file_cid = _cid(b"file bytes")
    v0 = _cid(b"a dag-pb node", version=0)
    return {
        "type": "asset",
        "file": file_cid,
        "legacy": v0,
        "thumb": b"\x89PNG\r\n\x1a\n\x00\xff",
        "empty_bytes": b"",
        "tags": ["a", "é", "日本", ""],
        "sizes": [0, 1, 23, 24, 255, 256, 2**32, 2**64 - 1, -1, -(2**64)],
        "ratio": 0.1,
        "neg": -2.5,
        "flags": {"public": True, "nsfw": False, "note": None},
        "deep": [[{"x": [file_cid, {"y": v0}]}], [], {}],
        "aa": 1,
        "b": 2,
    }


def test_round_trip_nested_value_with_cids_and_bytes():
    value = _nested_value()
    data = dag.encode_dagcbor(value)
    back = dag.decode_dagcbor(data)
    assert back == value
    assert isinstance(back["file"], CID)
    assert back["file"].version == 1 and back["file"].codec.name == "raw"
    assert back["legacy"].version == 0
    assert isinstance(back["thumb"], bytes)
    # canonical: re-encoding the decoded value gives the very same bytes
    assert dag.encode_dagcbor(back) == data


def test_encoding_does_not_depend_on_insertion_order():
    value = _nested_value()
    reversed_value = dict(reversed(list(value.items())))
    assert dag.encode_dagcbor(reversed_value) == dag.encode_dagcbor(value)


def test_record_block_is_cidv1_dag_cbor_sha256_of_the_encoding():
    value = _nested_value()
    block = dag.record_block(value)
    data = dag.encode_dagcbor(value)
    assert block.data == data
    assert block.cid.version == 1
    assert block.cid.codec.name == "dag-cbor"
    # CIDv1 bytes: version 1, dag-cbor 0x71, sha2-256 0x12, length 32, digest
    assert bytes(block.cid) == b"\x01\x71\x12\x20" + hashlib.sha256(data).digest()


def test_record_block_with_sha3():
    block = dag.record_block({"a": 1}, hashfun="sha3-256")
    data = dag.encode_dagcbor({"a": 1})
    assert bytes(block.cid) == b"\x01\x71\x16\x20" + hashlib.sha3_256(data).digest()


# ---------------------------------------------------------------------------- DAG-JSON


def _pairs(text: str):
    """Parse JSON keeping every object's key order (as a list of pairs)."""
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


def test_dag_json_renders_cids_and_bytes():
    v1 = _cid(b"file bytes")
    v0 = _cid(b"node", version=0)
    out = json.loads(dag.to_dag_json({"v1": v1, "v0": v0, "b": b"\x01\x02\x03", "h": b"hi"}))
    assert out["v1"] == {"/": v1.encode("base32")}
    assert out["v1"]["/"].startswith("bafk")
    assert out["v0"] == {"/": str(v0)}
    assert out["v0"]["/"].startswith("Qm")
    # DAG-JSON bytes: standard base64 without padding
    assert out["b"] == {"/": {"bytes": "AQID"}}
    assert out["h"] == {"/": {"bytes": "aGk"}}


def test_dag_json_bytes_round_trip_through_base64():
    for length in range(0, 10):
        payload = bytes(range(250, 250 - length, -1))
        out = json.loads(dag.to_dag_json(payload))
        text = out["/"]["bytes"]
        assert "=" not in text
        assert base64.b64decode(text + "=" * (-len(text) % 4)) == payload


def test_dag_json_dag_cbor_cid_prefix():
    record = dag.record_block({"a": 1}).cid
    out = json.loads(dag.to_dag_json([record]))
    assert out == [{"/": record.encode("base32")}]
    assert out[0]["/"].startswith("bafyrei")


def test_dag_json_of_decoded_record():
    value = _nested_value()
    out = json.loads(dag.to_dag_json(dag.decode_dagcbor(dag.encode_dagcbor(value))))
    assert out["sizes"] == value["sizes"]
    assert out["deep"][0][0]["x"][0] == {"/": value["file"].encode("base32")}
    assert out["deep"][0][0]["x"][1]["y"] == {"/": str(value["legacy"])}
    assert out["flags"] == {"nsfw": False, "note": None, "public": True}


def test_dag_json_is_one_line_without_indent():
    text = dag.to_dag_json({"a": [1, 2], "b": {"c": b"x"}}, indent=None)
    assert "\n" not in text


def test_dag_json_sorts_keys_bytewise_not_length_first():
    # The DAG-JSON spec: "Sort object keys by their (UTF-8) encoded representation, i.e. with
    # byte comparisons". Length-first ordering is DAG-CBOR's, not DAG-JSON's.
    value = {"b": 1, "aa": 2, "a": 3, "ba": 4, "c": {"zz": 1, "y": 2, "xyz": 3}}
    pairs = _pairs(dag.to_dag_json(value))
    keys = [k for k, _ in pairs]
    assert keys == sorted(value, key=lambda k: k.encode())  # a, aa, b, ba, c
    assert keys == ["a", "aa", "b", "ba", "c"]
    inner = dict(pairs)["c"]
    assert [k for k, _ in inner] == ["xyz", "y", "zz"]


def test_dag_json_sort_uses_utf8_bytes():
    value = {"é": 1, "z": 2, "ab": 3, "\U0001f600": 4, "ÿ": 5}
    keys = [k for k, _ in _pairs(dag.to_dag_json(value))]
    assert keys == sorted(value, key=lambda k: k.encode("utf-8"))
