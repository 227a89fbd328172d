"""Signing and verifying records.

A signed record is a DAG-CBOR map carrying ``signer`` (an Ed25519 ``did:key``) and ``sig``: the
Ed25519 signature over the DAG-CBOR bytes of the same map without ``sig`` (``signer`` included,
so a signature cannot be re-attributed to another key). DAG-CBOR is canonical (sorted keys,
shortest integers, 64-bit floats), so every peer derives the same bytes from the decoded map and
verification needs nothing but the record itself.

This module checks signatures only; :func:`provenance.verify_signed` also checks the schema.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from multiformats import CID

from dag.dagcbor import encode, record_block
from dag.errors import CodecError

from .errors import IdentityError, RecordError, SignatureError
from .identity import Identity, public_key_from_did

__all__ = ["sign_record", "verify_record", "signing_bytes", "record_cid", "SIGNATURE_FIELDS"]

SIGNATURE_FIELDS = ("signer", "sig")
_SIGNATURE_LENGTH = 64


def signing_bytes(record: dict[str, Any]) -> bytes:
    """The bytes a record's signature covers: DAG-CBOR of the record without ``sig``."""
    if not isinstance(record, dict):
        raise RecordError(f"record: expected a map, got {type(record).__name__}")
    unsigned = {k: v for k, v in record.items() if k != "sig"}
    try:
        return encode(unsigned)
    except CodecError as exc:
        raise RecordError(f"record: {exc}") from None


def sign_record(record: dict[str, Any], identity: Identity) -> dict[str, Any]:
    """A new record: ``record`` plus ``signer`` (the identity's did:key) and ``sig``.

    Refuses a record that already has ``sig`` (strip it to re-sign) or names another signer.
    """
    if not isinstance(record, dict):
        raise RecordError(f"record: expected a map, got {type(record).__name__}")
    if "sig" in record:
        raise SignatureError("record already has a 'sig'; remove it before signing again")
    signer = record.get("signer", identity.did)
    if signer != identity.did:
        raise SignatureError(
            f"record names signer {signer!r} but is being signed by {identity.did}"
        )
    signed = {**record, "signer": identity.did}
    signed["sig"] = identity.sign(signing_bytes(signed))
    return signed


def verify_record(record: dict[str, Any]) -> None:
    """Raise SignatureError unless ``record['sig']`` is ``record['signer']``'s signature of it."""
    if not isinstance(record, dict):
        raise SignatureError(f"record is not a map but {type(record).__name__}")
    if "signer" not in record:
        raise SignatureError("record has no 'signer'")
    if "sig" not in record:
        raise SignatureError("record has no 'sig'")
    signer, sig = record["signer"], record["sig"]
    if not isinstance(signer, str):
        raise SignatureError(
            f"record 'signer' must be a did:key string, got {type(signer).__name__}"
        )
    if not isinstance(sig, bytes):
        raise SignatureError(f"record 'sig' must be bytes, got {type(sig).__name__}")
    if len(sig) != _SIGNATURE_LENGTH:
        raise SignatureError(f"record 'sig' is {len(sig)} bytes, an Ed25519 signature is 64")
    try:
        public_key = public_key_from_did(signer)
    except IdentityError as exc:
        raise SignatureError(f"record 'signer' is malformed: {exc}") from None
    try:
        payload = signing_bytes(record)
    except RecordError as exc:
        raise SignatureError(f"cannot verify: {exc}") from None
    try:
        public_key.verify(sig, payload)
    except InvalidSignature:
        raise SignatureError(
            f"bad signature: the record was altered or not signed by {signer}"
        ) from None


def record_cid(record: dict[str, Any]) -> CID:
    """The CID of a record's DAG-CBOR block (CIDv1, dag-cbor, sha2-256)."""
    try:
        return record_block(record).cid
    except CodecError as exc:
        raise RecordError(f"record: {exc}") from None
