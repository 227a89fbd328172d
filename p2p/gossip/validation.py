"""Validating one gossip message: the pure core every topic's validator runs.

Everything that decides whether a message is accepted lives here; this module does not know
about libp2p, trio or peers. :func:`validate` takes the raw bytes of a message and answers
:class:`Accept` (with the decoded record and its CID) or :class:`Reject` (with a reason from
:data:`REJECT_REASONS` and a one-line detail). The checks run cheapest first:

1. size (``too-big``), 2. strict DAG-CBOR (``bad-cbor``), 3. the record's ``type`` is one the
topic accepts and its schema holds (``bad-schema``), 4. the envelope names this topic
(``wrong-topic``), 5. ``created`` inside the window (``too-old`` / ``from-future``),
6. not a record already accepted within the window (``replay``), 7. the signature
(``bad-signature``), 8. the topic's own check (``rejected``).

A replay is the same signed record (same CID) arriving again as a *new* pubsub message: pubsub
already drops copies of one message by its id before any validator runs, so a second sighting
of a CID here means somebody re-published it. The duplicate cache only needs to remember a CID
as long as the time window would still accept the record, which bounds its memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from multiformats import CID

from dag import Block, CodecError, decode_dagcbor
from provenance import RecordError, SignatureError, parse_timestamp, validate_record, verify_record

__all__ = ["REJECT_REASONS", "Accept", "DuplicateCache", "Reject", "TopicSpec", "validate"]

REJECT_REASONS = (
    "too-big",
    "bad-cbor",
    "bad-schema",
    "wrong-topic",
    "too-old",
    "from-future",
    "replay",
    "bad-signature",
    "rejected",
    "graylisted",  # given by the adapter, not by validate(): the forwarding peer is ignored
)

ExtraCheck = Callable[[dict[str, Any]], str | None]
"""A topic's own rule: returns None if the record passes, else a one-line reason."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One gossip topic and the rules its messages obey. Adding a topic is one of these."""

    name: str
    max_bytes: int
    accepted_types: frozenset[str]
    max_age_s: float
    max_future_s: float = 30.0
    extra_check: ExtraCheck | None = None

    def __post_init__(self) -> None:
        if not self.name.startswith("/artdag/"):
            raise ValueError(f"topic names start with /artdag/, got {self.name!r}")
        if self.max_bytes <= 0 or self.max_age_s <= 0 or self.max_future_s < 0:
            raise ValueError(f"topic {self.name}: limits must be positive")


@dataclass(frozen=True, slots=True)
class Accept:
    record: dict[str, Any]
    cid: CID
    raw: bytes


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(slots=True)
class DuplicateCache:
    """CIDs of accepted records, each remembered until ``expires`` (unix seconds).

    ``max_entries`` caps memory under a flood; the oldest entries go first, and an evicted
    record older than its topic's window is refused as ``too-old`` anyway.
    """

    max_entries: int = 100_000
    _expiry: OrderedDict[bytes, float] = field(default_factory=OrderedDict)

    def seen(self, cid: CID, now: float) -> bool:
        expires = self._expiry.get(bytes(cid))
        return expires is not None and expires > now

    def add(self, cid: CID, expires: float, now: float) -> None:
        self.prune(now)
        key = bytes(cid)
        self._expiry.pop(key, None)
        self._expiry[key] = expires
        while len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)

    def prune(self, now: float) -> None:
        """Forget expired CIDs (entries are in insertion order, which is close to expiry order)."""
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[key]

    def __len__(self) -> int:
        return len(self._expiry)


def validate(spec: TopicSpec, raw: bytes, *, now: float, seen: DuplicateCache) -> Accept | Reject:
    """Decide on one message of ``spec``'s topic; on Accept, remember its CID in ``seen``."""
    if len(raw) > spec.max_bytes:
        return Reject("too-big", f"{len(raw)} bytes, {spec.name} allows {spec.max_bytes}")
    try:
        record = decode_dagcbor(raw)
    except CodecError as exc:
        return Reject("bad-cbor", str(exc))
    kind = record.get("type") if isinstance(record, dict) else type(record).__name__
    # ``type`` may be any IPLD value (a list is unhashable): only a string can be accepted.
    if not isinstance(record, dict) or not isinstance(kind, str) or kind not in spec.accepted_types:
        wanted = ", ".join(sorted(spec.accepted_types))
        return Reject("bad-schema", f"{spec.name} carries {wanted}, not {repr(kind)[:80]}")
    try:
        validate_record(record)
    except RecordError as exc:
        return Reject("bad-schema", str(exc))
    if "topic" in record and record["topic"] != spec.name:
        return Reject("wrong-topic", f"signed for {record['topic']}, arrived on {spec.name}")
    created = parse_timestamp(record["created"]).timestamp()
    if created < now - spec.max_age_s:
        return Reject("too-old", f"created {now - created:.0f} s ago, limit {spec.max_age_s:g} s")
    if created > now + spec.max_future_s:
        return Reject("from-future", f"created {created - now:.0f} s ahead of our clock")
    cid = Block.encode(raw, "dag-cbor").cid
    if seen.seen(cid, now):
        return Reject("replay", f"record {cid.encode('base32')} was already accepted")
    try:
        verify_record(record)
    except SignatureError as exc:
        return Reject("bad-signature", str(exc))
    if spec.extra_check is not None:
        problem = spec.extra_check(record)
        if problem is not None:
            return Reject("rejected", problem)
    # Remember it until the window would refuse it anyway (plus the allowed clock skew).
    seen.add(cid, created + spec.max_age_s + spec.max_future_s, now)
    return Accept(record, cid, raw)
