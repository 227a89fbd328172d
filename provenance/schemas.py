"""Validating records against the schema of their ``type``.

The schemas themselves are data in :mod:`provenance.record_types`; this module adds the fields
every record shares and checks a decoded record against them. Messages name the field:
``asset.size: expected a non-negative integer, got 'ten'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import RecordError
from .fields import Bytes, DidKey, Field, OneOf, check_fields, show_value
from .record_types import RECORD_TYPES
from .signed_records import verify_record

__all__ = ["validate_record", "verify_signed", "record_types", "schema_for"]


def _with_common_fields(type_name: str, fields: Mapping[str, Field]) -> Mapping[str, Field]:
    common = {
        "type": OneOf(type_name),
        "signer": DidKey(optional=True),
        "sig": Bytes(64, optional=True),
    }
    clash = common.keys() & fields.keys()
    if clash:
        raise ValueError(f"record type {type_name!r} redefines common fields {sorted(clash)}")
    return MappingProxyType({**common, **fields})


_SCHEMAS: dict[str, Mapping[str, Field]] = {
    name: _with_common_fields(name, fields) for name, fields in RECORD_TYPES.items()
}


def record_types() -> frozenset[str]:
    """The record types this version knows."""
    return frozenset(_SCHEMAS)


def schema_for(type_name: str) -> Mapping[str, Field]:
    """The field kinds of a record type (including ``type``, ``signer`` and ``sig``)."""
    try:
        return _SCHEMAS[type_name]
    except KeyError:
        raise RecordError(f"record type {show_value(type_name)} is unknown") from None


def validate_record(record: Any) -> None:
    """Raise RecordError, naming the field, unless ``record`` matches the schema of its type.

    ``signer`` and ``sig`` are checked for shape if present; whether the signature holds is
    :func:`verify_signed`'s business.
    """
    if not isinstance(record, dict):
        raise RecordError(f"record: expected a map, got {show_value(record)}")
    if "type" not in record:
        raise RecordError("record: missing 'type'")
    type_name = record["type"]
    if not isinstance(type_name, str):
        raise RecordError(f"record.type: expected a string, got {show_value(type_name)}")
    check_fields(schema_for(type_name), record, type_name)


def verify_signed(record: Any) -> None:
    """Check a signed record: schema first (RecordError), then signature (SignatureError)."""
    validate_record(record)
    verify_record(record)
