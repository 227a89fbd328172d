"""Record schemas: every error names the field it is about."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from dag.cids import Block, cid_to_str
from dag.dagcbor import record_block
from provenance import (
    Identity,
    RecordError,
    SignatureError,
    make_asset_record,
    make_provenance_record,
    parse_timestamp,
    record_types,
    sign_record,
    utc_timestamp,
    validate_record,
    verify_signed,
)

ALICE = Identity.from_seed(bytes(range(32)))
ROOT = Block.encode(b"frame data", "raw").cid
EFFECT = record_block({"type": "effect", "op": "identity"}).cid
CHUNKER = {"size": 1048576, "cid_version": 1, "raw_leaves": True}


def asset(**changes) -> dict:
    record = make_asset_record(
        root=ROOT, name="clip.mp4", size=10, mime="video/mp4", tags=["loop"], chunker=CHUNKER
    )
    record.update(changes)
    return record


def provenance(**changes) -> dict:
    record = make_provenance_record(
        output=ROOT,
        inputs=[ROOT, ROOT],
        software={"artdag": "0.1.0", "ffmpeg": "6.1"},
        effects=[EFFECT],
        recipe=EFFECT,
        parameters={"speed": 1.5, "frames": [1, 2], "label": None},
        steps=[EFFECT],
        node="node-1",
        renderer=ALICE.did,
    )
    record.update(changes)
    return record


def without(record: dict, field: str) -> dict:
    return {k: v for k, v in record.items() if k != field}


def test_builders_produce_valid_records():
    validate_record(asset())
    validate_record(provenance())
    minimal = make_provenance_record(output=ROOT, inputs=[], software={"artdag": "0.1.0"})
    assert set(minimal) == {"type", "version", "output", "inputs", "software", "created"}
    validate_record(minimal)


def test_builders_stamp_created_now_in_utc_seconds():
    created = asset()["created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)
    assert abs(parse_timestamp(created) - datetime.now(UTC)) < timedelta(seconds=5)


def test_builders_refuse_invalid_input():
    with pytest.raises(RecordError, match=r"^asset\.size: "):
        make_asset_record(root=ROOT, name="x", size=-1)


def test_utc_timestamp_converts_and_refuses_naive():
    moment = datetime(2026, 11, 21, 13, 0, 0, 999999, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-11-21T13:00:00Z"
    with pytest.raises(ValueError):
        utc_timestamp(datetime(2026, 11, 21))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        # the examples the schema promises, word for word
        (asset(size="ten"), "asset.size: expected a non-negative integer, got 'ten'"),
        (without(asset(), "root"), "asset: missing required field 'root'"),
        (asset(colour="red"), "asset: unknown field 'colour'"),
        ({"name": "x"}, "record: missing 'type'"),
        (asset(type="foo"), "record type 'foo' is unknown"),
        # wrong type
        (asset(size=True), "asset.size: expected a non-negative integer, got True"),
        (asset(size=10.0), "asset.size: expected a non-negative integer, got 10.0"),
        (
            asset(mime=None),
            "asset.mime: expected a media type like 'video/mp4' or 'text/plain; charset=utf-8' "
            "(RFC 6838 names; no quotes, commas or other spaces), got None",
        ),
        (asset(tags="loop"), "asset.tags: expected a list, got 'loop'"),
        (asset(chunker={"size": 1}.keys()), "asset.chunker: expected a map, got a dict_keys"),
        (asset(chunker=[]), "asset.chunker: expected a map, got a list of 0 items"),
        (asset(type=3), "record.type: expected a string, got 3"),
        (asset(sig="ab" * 32), "asset.sig: expected 64 bytes, got '" + "ab" * 32 + "'"),
        (
            provenance(software={"ffmpeg": 6}),
            "provenance.software['ffmpeg']: expected a string of 1..128 characters, got 6",
        ),
        # out of range
        (asset(size=-1), "asset.size: expected a non-negative integer, got -1"),
        (asset(version=2), "asset.version: expected 1, got 2"),
        (asset(name=""), "asset.name: expected a string of 1..255 characters, got 0 characters"),
        (
            asset(name="x" * 256),
            "asset.name: expected a string of 1..255 characters, got 256 characters",
        ),
        (asset(name="a/b"), "asset.name: must not contain '/', got 'a/b'"),
        (asset(name="a\x00b"), "asset.name: must not contain '\\x00', got 'a\\x00b'"),
        (
            asset(tags=["ok", "x" * 65]),
            "asset.tags[1]: expected a string of 1..64 characters, got 65 characters",
        ),
        (asset(tags=["t"] * 33), "asset.tags: expected at most 32 items, got 33"),
        (
            asset(chunker={**CHUNKER, "cid_version": 2}),
            "asset.chunker.cid_version: expected one of 0, 1, got 2",
        ),
        (
            asset(chunker={**CHUNKER, "raw_leaves": 1}),
            "asset.chunker.raw_leaves: expected true or false, got 1",
        ),
        (asset(sig=bytes(63)), "asset.sig: expected 64 bytes, got 63 bytes"),
        # nested missing and unknown fields
        (asset(chunker=without(CHUNKER, "size")), "asset.chunker: missing required field 'size'"),
        (asset(chunker={**CHUNKER, "colour": 1}), "asset.chunker: unknown field 'colour'"),
        (without(provenance(), "software"), "provenance: missing required field 'software'"),
        # not a map at all
        ([1], "record: expected a map, got a list of 1 item"),
    ],
)
def test_schema_errors_name_the_field(record, message):
    with pytest.raises(RecordError) as info:
        validate_record(record)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (asset(root=cid_to_str(ROOT)), "asset.root"),
        (provenance(output=str(ROOT)), "provenance.output"),
        (provenance(inputs=[ROOT, cid_to_str(ROOT)]), r"provenance.inputs\[1\]"),
        (provenance(recipe=cid_to_str(EFFECT)), "provenance.recipe"),
        (provenance(steps=[EFFECT, "/ipfs/" + cid_to_str(EFFECT)]), r"provenance.steps\[1\]"),
    ],
)
def test_cid_given_as_string_is_refused(record, field):
    with pytest.raises(RecordError, match=rf"^{field}: expected a .*CID link, got the string"):
        validate_record(record)
    with pytest.raises(RecordError, match="never strings"):
        validate_record(record)


def test_dag_json_style_link_is_refused():
    with pytest.raises(RecordError, match=r"^provenance.output: expected a CID link, got a map"):
        validate_record(provenance(output={"/": cid_to_str(ROOT)}))


def test_asset_root_must_be_a_unixfs_cid():
    with pytest.raises(
        RecordError, match=r"^asset\.root: expected a dag-pb or raw CID link, got a dag-cbor CID"
    ):
        validate_record(asset(root=EFFECT))
    dag_pb = Block.encode(b"\x0a\x02\x08\x01", "dag-pb").cid
    validate_record(asset(root=dag_pb))


@pytest.mark.parametrize(
    "created",
    [
        "2026-11-21 12:00:00Z",
        "2026-11-21T12:00:00+00:00",
        "2026-02-30T12:00:00Z",
        "2026-11-21",
        1700000000,
    ],
)
def test_created_must_be_an_rfc3339_utc_timestamp(created):
    with pytest.raises(RecordError, match=r"^asset\.created: expected an RFC 3339 UTC timestamp"):
        validate_record(asset(created=created))


def test_timestamps_may_carry_a_fraction():
    validate_record(asset(created="2026-11-21T12:00:00.250Z"))
    assert parse_timestamp("2026-11-21T12:00:00.250Z").microsecond == 250000


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (provenance(renderer="did:web:x"), "provenance.renderer: not a did:key"),
        (
            provenance(parameters={"x": float("nan")}),
            r"provenance.parameters\['x'\]: DAG-CBOR has no NaN",
        ),
        (
            provenance(parameters={"x": [1, {2: 3}]}),
            r"provenance.parameters\['x'\]\[1\]: map keys must be strings",
        ),
        (
            provenance(parameters={"x": (1, 2)}),
            r"provenance.parameters\['x'\]: expected an IPLD value",
        ),
        (
            provenance(parameters={"x": 2**64}),
            r"provenance.parameters\['x'\]: integer .* does not fit",
        ),
        (provenance(inputs=ROOT), "provenance.inputs: expected a list, got CID"),
        (provenance(node=""), "provenance.node: expected a string of 1..128 characters"),
        (
            asset(signer="did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"),
            "asset.signer: did:key is not an Ed25519 key",
        ),
    ],
)
def test_provenance_field_errors(record, message):
    with pytest.raises(RecordError, match=f"^{message}"):
        validate_record(record)


def test_record_types_known_now():
    assert {"asset", "provenance"} <= record_types()


def test_verify_signed_accepts_a_valid_signed_record():
    verify_signed(sign_record(asset(), ALICE))
    verify_signed(sign_record(provenance(), ALICE))


def test_verify_signed_checks_schema_before_signature():
    signed = sign_record(asset(), ALICE)
    broken = {**signed, "size": "ten"}  # breaks both the schema and the signature
    with pytest.raises(RecordError, match=r"^asset\.size"):
        verify_signed(broken)


def test_verify_signed_checks_the_signature():
    signed = sign_record(asset(), ALICE)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_signed({**signed, "size": 11})  # valid shape, wrong signature


def test_verify_signed_refuses_unsigned_records():
    validate_record(asset())  # a draft validates...
    with pytest.raises(SignatureError, match="no 'signer'"):
        verify_signed(asset())  # ...but is not a signed record


def test_error_messages_are_one_line():
    for record in (asset(name="a\nb/"), asset(size="x\ny"), asset(type="a\nb")):
        with pytest.raises(RecordError) as info:
            validate_record(record)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "mime",
    [
        "video/mp4",
        "audio/ogg; codecs=opus",
        "image/svg+xml",
        "text/plain;charset=utf-8",
        "Text/Plain; charset=UTF-8; format=flowed",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
        "x/" + "y" * 127,
    ],
)
def test_mime_accepts_media_types(mime):
    validate_record(asset(mime=mime))


@pytest.mark.parametrize(
    "mime",
    [
        "video",
        "vidéo/mp4",
        "video/mp4\n",
        "/mp4",
        "text/plain; x=y, text/html",  # a browser reads the last type of a comma list
        "text/plain, text/html",
        'video/mp4; codecs="avc1.42E01E, mp4a.40.2"',  # quoted strings are not parsed: refused
        "text/plain;",
        "text/plain; charset",
        "text/plain; charset=",
        "text/plain;  charset=utf-8",
        "text/plain ; charset=utf-8",
        "text/plain; charset=utf-8 ",
        "text/plain\r\nSet-Cookie: a=b",
        "text/plain\tx",
        "text/*",
        "-text/plain",
        "text/pl\u0430in",  # a Cyrillic a
        "x/" + "y" * 128,  # a subtype of 128 characters
        "text/plain" + "; a=b" * 9,  # at most 8 parameters
        "a/b; c=" + "d" * 250,  # over 255 characters in all
    ],
)
def test_mime_refuses_non_media_types(mime):
    with pytest.raises(RecordError, match=r"^asset\.mime: "):
        validate_record(asset(mime=mime))


def test_timestamp_digits_are_ascii():
    with pytest.raises(RecordError, match=r"^asset\.created: "):
        validate_record(asset(created="٢٠٢٦-11-21T12:00:00Z"))
