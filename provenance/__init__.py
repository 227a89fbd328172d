"""Provenance: who made what, from what, with what.

Identities are Ed25519 keys named by ``did:key``; records are DAG-CBOR maps with a ``type`` field,
checked against a declarative schema per type and signed by their author. Everything here is
pure (no network, no trio); the only I/O is reading and writing a key file.
"""

from __future__ import annotations

from .errors import IdentityError, ProvenanceError, RecordError, SignatureError
from .fields import is_media_type, parse_timestamp
from .identity import Identity, did_key_from_public, public_key_from_did
from .record_builders import make_asset_record, make_provenance_record, utc_timestamp
from .schemas import record_types, schema_for, validate_record, verify_signed
from .signed_records import record_cid, sign_record, signing_bytes, verify_record

__all__ = [
    # errors
    "ProvenanceError",
    "IdentityError",
    "SignatureError",
    "RecordError",
    # identity
    "Identity",
    "did_key_from_public",
    "public_key_from_did",
    # signed records
    "sign_record",
    "verify_record",
    "signing_bytes",
    "record_cid",
    # schemas
    "validate_record",
    "verify_signed",
    "record_types",
    "schema_for",
    "is_media_type",
    # builders
    "make_asset_record",
    "make_provenance_record",
    "utc_timestamp",
    "parse_timestamp",
]
