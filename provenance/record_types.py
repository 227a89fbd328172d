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
    AnyValue,
    Boolean,
    Bytes,
    DidKey,
    Field,
    Integer,
    Link,
    ListOf,
    MapOf,
    MediaType,
    OneOf,
    Struct,
    Text,
    Timestamp,
)

__all__ = ["RECORD_TYPES", "UNIXFS_CODECS"]

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
    "mime": MediaType(optional=True),  # strict: see provenance.fields.is_media_type
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
    # volunteers whose accepted receipts made steps of this output (render infrastructure)
    "infrastructure": ListOf(DidKey(), max_items=256, optional=True),
    "created": Timestamp(),
}

# -- rendering (renderer/): effects, recipes and step receipts -------------------------------
_NAME = Text(1, 64, pattern=r"[a-z][a-z0-9-]*")
_PARAM_SPEC = Struct(
    {
        "type": OneOf("int", "float", "bool", "string", "cid"),
        "doc": Text(1, 500),
        "default": AnyValue(optional=True),
        "min": AnyValue(optional=True),
        "max": AnyValue(optional=True),
        "choices": ListOf(Text(1, 64), min_items=1, max_items=64, optional=True),
    }
)
_EFFECT: dict[str, Field] = {
    "version": OneOf(1),
    "name": _NAME,
    "release": Integer(1),  # the effect's own version; bump when its output changes
    "description": Text(1, 1000),
    "inputs": ListOf(
        Struct({"name": _NAME, "kind": OneOf("media", "beats")}), min_items=0, max_items=16
    ),
    "variadic": Boolean(optional=True),  # the last input may repeat (sequence)
    "output": OneOf("media", "beats"),
    "params": MapOf(_PARAM_SPEC, key=Text(1, 64), max_entries=64),
    "author": DidKey(),
}
_RECIPE_NODE = Struct(
    {
        "effect": Link(["dag-cbor"]),
        "inputs": ListOf(Text(1, 64), max_items=256),  # recipe inputs or other node ids
        "params": MapOf(max_entries=64, optional=True),
    }
)
_RECIPE: dict[str, Field] = {
    "version": OneOf(1),
    "name": Text(1, 128),
    "description": Text(0, 2000, optional=True),
    "inputs": ListOf(Text(1, 64), max_items=64),  # names bound at render time
    "nodes": MapOf(_RECIPE_NODE, key=Text(1, 64), max_entries=256),
    "output": Text(1, 64),  # the node whose result the recipe delivers
    "author": DidKey(optional=True),
}
_RECEIPT: dict[str, Field] = {
    "version": OneOf(1),
    "cache_id": Link(["dag-cbor"]),  # hash of (effect, canonical config, input ids)
    "operation": _NAME,
    "effect": Link(["dag-cbor"]),
    "params": MapOf(max_entries=64),
    "inputs": ListOf(Link(), max_items=256),  # content CIDs the step read
    "output": Link(),
    "content_key": Text(1, 128),  # hash of the decoded streams (or the record CID)
    "milliseconds": Integer(0),
    "frames": Integer(0),
    "fused": ListOf(Link(["dag-cbor"]), optional=True),  # cache ids run in the same process
    "renderer": DidKey(),
    "created": Timestamp(),
}

# -- network (p2p/): creator repo commits and the gossip envelopes ---------------------------
# A commit appends one record to its signer's repo (an append-only chain, seq 0, 1, 2, ...);
# ``repo`` must equal ``signer`` and ``prev`` is absent exactly at seq 0 (p2p.repo checks both).
_COMMIT: dict[str, Field] = {
    "version": OneOf(1),
    "repo": DidKey(),
    "seq": Integer(0),
    "prev": Link(["dag-cbor"], optional=True),
    "record": Link(),
    "created": Timestamp(),
}
# Gossip envelopes carry the topic they were published on, their creation time and a random
# nonce, so a signed message cannot be moved to another topic and two equal payloads differ.
_ENVELOPE: dict[str, Field] = {
    "topic": Text(1, 128, pattern=r"/artdag/[0-9]+/[a-z][a-z0-9-]*"),
    "created": Timestamp(),
    "nonce": Bytes(16),
}
_HEAD: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "repo": DidKey(),
    "seq": Integer(0),
    "head": Link(["dag-cbor"]),  # the repo's newest commit
    # The new commit and its record inline when they are small, so followers need no
    # bitswap round trip for the common case; each is checked against its CID before use.
    "blocks": ListOf(Bytes(), max_items=4, optional=True),
}
_CLAIM_ANNOUNCE: dict[str, Field] = {  # a pointer to a claim record; `claim` arrives later
    "version": OneOf(1),
    **_ENVELOPE,
    "claim": Link(["dag-cbor"]),
    "subject": Link(optional=True),  # the claimed asset, if the announcer names it
}

# -- the render market (renderer/market, daemon/market_service): /artdag/1/jobs -------------
# A requester gossips a ``job`` per step; volunteers answer with an ``offer`` (or a ``decline``
# naming the policy rule that refuses it); the requester grants a ``lease`` of one replica slot
# until ``expires`` and renews it on each ``heartbeat``; the volunteer publishes a ``result``
# carrying its signed ``receipt`` inline, or a ``release`` if it cannot take the slot after
# all; ``job-close`` ends the job for everyone (with the accepted output when it is done).
# Who may sign what (requester: job, lease, job-close; the lease's volunteer: heartbeat,
# result, release) is checked by the state machines, which know the job.
_JOB_ID = Text(16, 64, pattern=r"[0-9a-f]+")
_SLOT = Integer(0, 15)
_JOB_INPUT = Struct(
    {
        "cid": Link(),  # the content to fetch
        "id": Link(),  # its identity in cache ids: the content CID, or the cache id making it
        "kind": OneOf("media", "beats"),
        "bytes": Integer(0),
        "duration_ms": Integer(0, optional=True),  # logical duration computed upstream
    }
)
_JOB: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "step": Text(1, 128),  # the recipe step, for people reading `artdag jobs`
    "cache_id": Link(["dag-cbor"]),
    "operation": _NAME,
    "effect": Link(["dag-cbor"]),
    "params": MapOf(max_entries=64),
    "format": Text(1, 64),
    "inputs": ListOf(_JOB_INPUT, min_items=1, max_items=16),
    "replicas": Integer(1, 9),
    "deadline": Timestamp(),
    "caps": Struct(
        {
            "cpu_seconds": Integer(1),
            "memory_bytes": Integer(1),
            "timeout_s": Integer(1),
        }
    ),
    "open": ListOf(_SLOT, max_items=16, optional=True),  # slots open now (re-announcements)
}
_OFFER: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "requester": DidKey(),
    "capacity": Integer(1, 64),  # jobs the volunteer runs at once
}
_DECLINE: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "requester": DidKey(),
    "reason": Text(1, 300),
}
_LEASE: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "slot": _SLOT,
    "volunteer": DidKey(),
    "expires": Timestamp(),
}
_HEARTBEAT: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "slot": _SLOT,
    "requester": DidKey(),
    "frames": Integer(0),
}
_RESULT: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "slot": _SLOT,
    "requester": DidKey(),
    "receipt": Link(["dag-cbor"]),
    "duration_ms": Integer(0, optional=True),
    "blocks": ListOf(Bytes(), max_items=2, optional=True),  # the receipt, checked by CID
}
_RELEASE: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "slot": _SLOT,
    "requester": DidKey(),
    "reason": Text(1, 300),
}
_JOB_CLOSE: dict[str, Field] = {
    "version": OneOf(1),
    **_ENVELOPE,
    "job": _JOB_ID,
    "status": OneOf("done", "failed", "cancelled"),
    "cache_id": Link(["dag-cbor"]),
    "output": Link(optional=True),  # when done: the accepted output ...
    "content_key": Text(1, 128, optional=True),  # ... its decoded-content key ...
    "duration_ms": Integer(0, optional=True),
    "kind": OneOf("media", "beats", optional=True),
    "receipts": ListOf(Link(["dag-cbor"]), max_items=16, optional=True),  # ... and who agreed
    "reason": Text(1, 300, optional=True),
}

# -- ownership and money (provenance/claims, splits, settlement, anchoring) -----------------
_ROLE = Text(1, 64, pattern=r"[a-z][a-z0-9-]*")
_SPLIT = MapOf(Integer(0, 10_000), key=_ROLE, max_entries=32)  # role -> basis points (sum 10000)
_CLAIM: dict[str, Field] = {
    "version": OneOf(1),
    "subject": Link(),  # the claimed work (a UnixFS root, or a record)
    "provenance": Link(["dag-cbor"], optional=True),  # how the work was made, if rendered
    "inputs": ListOf(Link(), max_items=256, optional=True),
    "effects": ListOf(Link(["dag-cbor"]), max_items=256, optional=True),
    "recipe": Link(["dag-cbor"], optional=True),
    "split": _SPLIT,  # how revenue of this work is shared between roles
    "license": Text(1, 200, optional=True),
    # the work's perceptual fingerprint (provenance.fingerprints), so that every node can
    # index claimed works for near-duplicates without fetching them
    "fingerprint": Bytes(optional=True),
    "created": Timestamp(),
}
_USAGE: dict[str, Field] = {
    "version": OneOf(1),
    "subject": Link(),  # the work used
    "kind": OneOf("view", "listen", "like", "boost"),
    "count": Integer(1, 1_000_000_000),
    "epoch": Text(7, 10, pattern=r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?"),  # month or day
    "listener": Text(1, 300, optional=True),  # a did or an actor URI (for per-listener pools)
    "source": Text(1, 300, optional=True),  # where it was counted (gateway, fediverse inbox)
    "created": Timestamp(),
}
_STATEMENT: dict[str, Field] = {
    "version": OneOf(1),
    "epoch": Text(7, 10, pattern=r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?"),
    "policy": OneOf("splits", "9ten"),
    "currency": Text(1, 16),
    "pool": Integer(0),  # minor units
    "lines": Link(["dag-cbor"]),  # a block holding the payee lines [{payee, amount}], in order
    "count": Integer(0),  # number of lines
    "root": Bytes(32),  # Merkle root (provenance.merkle) over the DAG-CBOR of each line
    "created": Timestamp(),
}
_ANCHOR: dict[str, Field] = {
    "version": OneOf(1),
    "root": Bytes(32),  # Merkle root over the leaves' CID bytes; this digest is timestamped
    "leaves": ListOf(Link(["dag-cbor"]), min_items=1, max_items=10_000),  # claims, statements
    "calendars": ListOf(Text(1, 300), max_items=16),
    "created": Timestamp(),
}

RECORD_TYPES: dict[str, dict[str, Field]] = {
    "asset": _ASSET,
    "provenance": _PROVENANCE,
    "commit": _COMMIT,
    "head": _HEAD,
    "claim-announce": _CLAIM_ANNOUNCE,
    "effect": _EFFECT,
    "recipe": _RECIPE,
    "receipt": _RECEIPT,
    "job": _JOB,
    "offer": _OFFER,
    "decline": _DECLINE,
    "lease": _LEASE,
    "heartbeat": _HEARTBEAT,
    "result": _RESULT,
    "release": _RELEASE,
    "job-close": _JOB_CLOSE,
    "claim": _CLAIM,
    "usage": _USAGE,
    "statement": _STATEMENT,
    "anchor": _ANCHOR,
}
