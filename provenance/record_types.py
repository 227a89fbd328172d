"""The schema of every record type, keyed by the record's ``type`` field.

To add a record type, add an entry to :data:`RECORD_TYPES`: a map from field name to field kind
(see :mod:`provenance.fields`). ``type`` (equal to the key), ``signer`` (a did:key) and ``sig``
(64 bytes) are added to every schema by :mod:`provenance.schemas`; ``signer`` and ``sig`` are
optional there so that unsigned drafts validate, and :func:`provenance.verify_signed` demands them.
Bump a type's ``version`` when its fields change meaning; validators refuse versions they do not
know rather than guess.
"""

from __future__ import annotations

from .fields import (
    Boolean,
    DidKey,
    Field,
    Integer,
    Link,
    ListOf,
    MapOf,
    OneOf,
    Struct,
    Text,
    Timestamp,
)

__all__ = ["RECORD_TYPES", "UNIXFS_CODECS"]

_MIME_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
_MIME = rf"{_MIME_TOKEN}/{_MIME_TOKEN}(;[ -~]*)?"  # type/subtype, parameters in printable ASCII
UNIXFS_CODECS = ("dag-pb", "raw")  # a UnixFS root is a dag-pb node, or a raw block if small

# 2 MiB is the largest block bitswap moves, so no chunk may be bigger.
_CHUNKER = Struct(
    {
        "size": Integer(1, 2 * 1024 * 1024),
        "cid_version": OneOf(0, 1),
        "raw_leaves": Boolean(),
        "layout": OneOf("balanced", "trickle", optional=True),
    },
    optional=True,
)

_ASSET: dict[str, Field] = {
    "version": OneOf(1),
    "root": Link(UNIXFS_CODECS),
    "name": Text(1, 255, forbid="/\x00"),
    "size": Integer(0),
    "mime": Text(3, 255, pattern=_MIME, optional=True),
    "tags": ListOf(Text(1, 64), max_items=32, optional=True),
    "chunker": _CHUNKER,
    "created": Timestamp(),
}

_PROVENANCE: dict[str, Field] = {
    "version": OneOf(1),
    "output": Link(),
    "inputs": ListOf(Link()),
    "effects": ListOf(Link(), optional=True),
    "recipe": Link(optional=True),
    "parameters": MapOf(optional=True),
    "steps": ListOf(Link(), optional=True),  # CIDs of the step receipts
    "software": MapOf(Text(1, 128), key=Text(1, 64), max_entries=64),  # {"artdag": "0.1.0"}
    "node": Text(1, 128, optional=True),  # id of the node (machine) that rendered
    "renderer": DidKey(optional=True),
    "created": Timestamp(),
}

RECORD_TYPES: dict[str, dict[str, Field]] = {
    "asset": _ASSET,
    "provenance": _PROVENANCE,
}
