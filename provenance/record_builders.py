"""Builders for unsigned records; each result already passes :func:`validate_record`.

Optional fields are left out rather than set to ``None``: DAG-CBOR would encode ``None`` as null,
and the schemas refuse a null where a value belongs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from multiformats import CID

from .schemas import validate_record

__all__ = ["utc_timestamp", "make_asset_record", "make_provenance_record"]


def utc_timestamp(moment: datetime | None = None) -> str:
    """An RFC 3339 UTC timestamp with seconds precision: ``2026-11-21T12:00:00Z`` (default now)."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; pass an aware one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _put_optional(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    record.update({name: value for name, value in fields.items() if value is not None})
    return record


def make_asset_record(
    *,
    root: CID,
    name: str,
    size: int,
    mime: str | None = None,
    tags: Iterable[str] | None = None,
    chunker: Mapping[str, Any] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``asset`` record for media whose UnixFS root is ``root``."""
    record: dict[str, Any] = {
        "type": "asset",
        "version": 1,
        "root": root,
        "name": name,
        "size": size,
        "created": created or utc_timestamp(),
    }
    _put_optional(
        record,
        mime=mime,
        tags=None if tags is None else list(tags),
        chunker=None if chunker is None else dict(chunker),
    )
    validate_record(record)
    return record


def make_provenance_record(
    *,
    output: CID,
    inputs: Iterable[CID],
    software: Mapping[str, str],
    effects: Iterable[CID] | None = None,
    recipe: CID | None = None,
    parameters: Mapping[str, Any] | None = None,
    steps: Iterable[CID] | None = None,
    node: str | None = None,
    renderer: str | None = None,
    infrastructure: Iterable[str] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``provenance`` record: ``output`` was made from ``inputs`` by this software."""
    record: dict[str, Any] = {
        "type": "provenance",
        "version": 1,
        "output": output,
        "inputs": list(inputs),
        "software": dict(software),
        "created": created or utc_timestamp(),
    }
    _put_optional(
        record,
        effects=None if effects is None else list(effects),
        recipe=recipe,
        parameters=None if parameters is None else dict(parameters),
        steps=None if steps is None else list(steps),
        node=node,
        renderer=renderer,
        infrastructure=sorted(set(infrastructure)) if infrastructure else None,
    )
    validate_record(record)
    return record
