"""Signed records: sign, verify, tamper, and the DAG-CBOR bytes underneath."""

from __future__ import annotations

import pytest
from multiformats import CID

from dag.cids import Block
from dag.dagcbor import decode, encode, record_block
from dag.errors import CodecError
from provenance import (
    Identity,
    RecordError,
    SignatureError,
    make_asset_record,
    public_key_from_did,
    record_cid,
    sign_record,
    signing_bytes,
    verify_record,
)

ALICE = Identity.from_seed(bytes(range(32)))
MALLORY = Identity.from_seed(bytes(range(1, 33)))
ROOT = Block.encode(b"frame data", "raw").cid
OTHER_ROOT = Block.encode(b"other frame data", "raw").cid


@pytest.fixture
def signed_asset() -> dict:
    record = make_asset_record(
        root=ROOT,
        name="clip.mp4",
        size=10,
        mime="video/mp4",
        tags=["loop"],
        chunker={"size": 1048576, "cid_version": 1, "raw_leaves": True},
        created="2026-11-21T12:00:00Z",
    )
    return sign_record(record, ALICE)


def test_sign_then_verify(signed_asset):
    assert signed_asset["signer"] == ALICE.did
    assert isinstance(signed_asset["sig"], bytes) and len(signed_asset["sig"]) == 64
    verify_record(signed_asset)


def test_signature_covers_the_record_without_sig_but_with_signer(signed_asset):
    unsigned = {k: v for k, v in signed_asset.items() if k != "sig"}
    assert "signer" in unsigned
    assert signing_bytes(signed_asset) == encode(unsigned)
    public_key_from_did(ALICE.did).verify(signed_asset["sig"], encode(unsigned))


def test_sign_record_does_not_mutate_its_argument():
    record = {"type": "note", "text": "hi"}
    signed = sign_record(record, ALICE)
    assert record == {"type": "note", "text": "hi"}
    assert signed is not record


def test_verification_needs_only_the_decoded_bytes(signed_asset):
    block = record_block(signed_asset)
    received = decode(Block.checked(block.cid, block.data).data)
    verify_record(received)
    assert record_cid(received) == block.cid


TAMPERED_VALUES = {
    "type": "provenance",
    "version": 2,
    "root": OTHER_ROOT,
    "name": "clip2.mp4",
    "size": 11,
    "mime": "video/webm",
    "tags": ["loop", "extra"],
    "chunker": {"size": 262144, "cid_version": 1, "raw_leaves": True},
    "created": "2026-11-21T12:00:01Z",
    "signer": MALLORY.did,
}


@pytest.mark.parametrize("field", sorted(TAMPERED_VALUES))
def test_tampering_with_any_field_fails(signed_asset, field):
    assert field in signed_asset
    tampered = {**signed_asset, field: TAMPERED_VALUES[field]}
    with pytest.raises(SignatureError, match="bad signature"):
        verify_record(tampered)


def test_tampering_with_the_signature_fails(signed_asset):
    sig = bytearray(signed_asset["sig"])
    sig[0] ^= 1
    with pytest.raises(SignatureError, match="bad signature"):
        verify_record({**signed_asset, "sig": bytes(sig)})


def test_adding_or_removing_a_field_fails(signed_asset):
    with pytest.raises(SignatureError, match="bad signature"):
        verify_record({**signed_asset, "extra": 1})
    without_mime = {k: v for k, v in signed_asset.items() if k != "mime"}
    with pytest.raises(SignatureError, match="bad signature"):
        verify_record(without_mime)


def test_resigning_by_someone_else_is_a_different_valid_record(signed_asset):
    stripped = {k: v for k, v in signed_asset.items() if k not in ("sig", "signer")}
    by_mallory = sign_record(stripped, MALLORY)
    verify_record(by_mallory)
    assert by_mallory["signer"] == MALLORY.did
    assert record_cid(by_mallory) != record_cid(signed_asset)


def test_sign_record_refuses_an_already_signed_record(signed_asset):
    with pytest.raises(SignatureError, match="already has a 'sig'"):
        sign_record(signed_asset, ALICE)


def test_sign_record_refuses_a_record_naming_another_signer():
    with pytest.raises(SignatureError, match="names signer"):
        sign_record({"type": "note", "signer": MALLORY.did}, ALICE)


def test_sign_record_is_deterministic():
    record = {"type": "note", "text": "hi"}
    assert sign_record(record, ALICE) == sign_record(record, ALICE)  # Ed25519 is deterministic


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.pop("signer"), "no 'signer'"),
        (lambda r: r.pop("sig"), "no 'sig'"),
        (lambda r: r.update(sig="ab" * 32), "'sig' must be bytes"),
        (lambda r: r.update(sig=r["sig"][:63]), "63 bytes"),
        (lambda r: r.update(signer=42), "'signer' must be a did:key string"),
        (lambda r: r.update(signer="did:web:alice.example"), "'signer' is malformed"),
        (lambda r: r.update(signer="did:key:z6MkiTBz1ymuepAQ"), "'signer' is malformed"),
    ],
)
def test_verify_record_reasons(signed_asset, change, reason):
    change(signed_asset)
    with pytest.raises(SignatureError, match=reason) as info:
        verify_record(signed_asset)
    assert "\n" not in str(info.value)


def test_verify_record_refuses_a_non_map():
    with pytest.raises(SignatureError, match="not a map"):
        verify_record([1, 2])  # type: ignore[arg-type]


def test_record_cid_is_the_dag_cbor_block_cid(signed_asset):
    cid = record_cid(signed_asset)
    assert isinstance(cid, CID)
    assert (cid.version, cid.codec.name, cid.hashfun.name) == (1, "dag-cbor", "sha2-256")
    assert cid == Block.encode(encode(signed_asset), "dag-cbor").cid
    assert record_cid(dict(reversed(list(signed_asset.items())))) == cid  # key order is canonical


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_refuses_non_finite_floats(value):
    with pytest.raises(CodecError):
        encode({"type": "note", "x": value})


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("fa3fc00000"),  # 1.5 as a 32-bit float
        bytes.fromhex("f93e00"),  # 1.5 as a 16-bit float
    ],
)
def test_decode_refuses_short_floats(data):
    assert decode(bytes.fromhex("fb3ff8000000000000")) == 1.5  # the 64-bit form is fine
    with pytest.raises(CodecError, match="64-bit"):
        decode(data)


def test_unencodable_records_are_refused_on_sign_verify_and_cid():
    record = {"type": "note", "x": float("nan")}
    with pytest.raises(RecordError, match="cannot encode"):
        sign_record(record, ALICE)
    with pytest.raises(RecordError, match="cannot encode"):
        record_cid(record)
    fake = {**record, "signer": ALICE.did, "sig": bytes(64)}
    with pytest.raises(SignatureError, match="cannot verify"):
        verify_record(fake)
    with pytest.raises(RecordError, match="cannot encode"):
        sign_record({"type": "note", 1: "non-string key"}, ALICE)
