"""Ownership claims and disputes, sans-I/O.

A ``claim`` record says: the signer owns this work (``subject``), made from these inputs with
these effects and this recipe, and its revenue is split between roles like this. Any number of
claims can exist for one work; two claimants on the same work, or on works whose perceptual
fingerprints say they are the same picture and sound (a re-encoded, resized, cropped or
brightened copy), are a *dispute*. Resolution: the claim whose existence was proved earliest by
an anchor (an OpenTimestamps attestation in a Bitcoin block) wins; claims without a completed
anchor come after every anchored one, in the order of their own ``created`` time (which the
claimant asserts and nobody can check), then by CID so the order is total.

Everything here works on plain data; the daemon reads the records, the anchor times and the
near-duplicate matches and hands them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dag import CID

from .errors import RecordError
from .fields import parse_timestamp
from .record_builders import utc_timestamp
from .schemas import validate_record
from .splits import DEFAULT_SPLIT as _DEFAULT
from .splits import Split

__all__ = [
    "DEFAULT_SPLIT",
    "ClaimInfo",
    "Dispute",
    "find_disputes",
    "make_claim_record",
    "parse_split",
    "rank_claims",
]

DEFAULT_SPLIT: dict[str, int] = dict(_DEFAULT.shares)  # basis points; 40 / 25 / 20 / 15


def parse_split(items: Iterable[str]) -> dict[str, int]:
    """``["footage=40", "effects=25.5", ...]`` (percent, exact to two decimals) -> basis points
    summing to exactly 10000 (:meth:`provenance.splits.Split.parse`); no items: the default."""
    items = list(items)
    if not items:
        return dict(DEFAULT_SPLIT)
    return dict(Split.parse(items).shares)


def make_claim_record(
    subject: CID,
    *,
    split: Mapping[str, int] | None = None,
    provenance: CID | None = None,
    inputs: Sequence[CID] = (),
    effects: Sequence[CID] = (),
    recipe: CID | None = None,
    license: str | None = None,
    fingerprint: bytes | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``claim`` on ``subject`` (sign it with :func:`provenance.sign_record`)."""
    shares = dict(split or DEFAULT_SPLIT)
    if sum(shares.values()) != 10_000:
        raise RecordError(f"split sums to {sum(shares.values())} basis points, not 10000")
    record: dict[str, Any] = {
        "type": "claim",
        "version": 1,
        "subject": subject,
        "split": shares,
        "created": created or utc_timestamp(),
    }
    if provenance is not None:
        record["provenance"] = provenance
    if inputs:
        record["inputs"] = list(dict.fromkeys(inputs))
    if effects:
        record["effects"] = list(dict.fromkeys(effects))
    if recipe is not None:
        record["recipe"] = recipe
    if license:
        record["license"] = license
    if fingerprint:
        record["fingerprint"] = fingerprint
    validate_record(record)
    return record


@dataclass(frozen=True)
class ClaimInfo:
    cid: str
    subject: str
    claimant: str
    created: float  # the claimant's own timestamp (unix seconds)
    anchored_at: float | None = None  # block time of a completed anchor, if any

    @classmethod
    def from_record(
        cls, cid: str, record: Mapping[str, Any], anchored_at: float | None = None
    ) -> ClaimInfo:
        subject = record["subject"]
        return cls(
            cid=cid,
            subject=subject.encode("base32") if isinstance(subject, CID) else str(subject),
            claimant=record["signer"],
            created=parse_timestamp(record["created"]).timestamp(),
            anchored_at=anchored_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.cid,
            "subject": self.subject,
            "claimant": self.claimant,
            "created": self.created,
            "anchored_at": self.anchored_at,
        }


def _rank_key(claim: ClaimInfo) -> tuple[int, float, float, str]:
    if claim.anchored_at is not None:
        return (0, claim.anchored_at, claim.created, claim.cid)
    return (1, claim.created, 0.0, claim.cid)


def rank_claims(claims: Iterable[ClaimInfo]) -> list[ClaimInfo]:
    """Earliest anchored first; then unanchored by their own creation time; then by CID."""
    return sorted(claims, key=_rank_key)


@dataclass(frozen=True)
class Dispute:
    subject: str  # the work (for near-duplicates: the earliest-claimed one of the group)
    reason: str  # "same-work" | "near-duplicate"
    claims: tuple[ClaimInfo, ...]  # ranked: the winner first
    evidence: tuple[str, ...] = field(default_factory=tuple)

    @property
    def winner(self) -> ClaimInfo:
        return self.claims[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "reason": self.reason,
            "winner": self.winner.to_json(),
            "claims": [c.to_json() for c in self.claims],
            "evidence": list(self.evidence),
        }


def find_disputes(
    claims: Iterable[ClaimInfo],
    near_duplicates: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> list[Dispute]:
    """Disputes among ``claims``.

    ``near_duplicates`` maps a subject to the other subjects whose fingerprints match it, with
    a similarity score (0..1), as the fingerprint index reports them. Claims by one claimant on
    one work are not a dispute (a later claim updates the split); two different claimants on
    one work, or on two near-duplicate works, are.
    """
    by_subject: dict[str, list[ClaimInfo]] = {}
    for claim in claims:
        by_subject.setdefault(claim.subject, []).append(claim)
    disputes: list[Dispute] = []
    for subject, group in sorted(by_subject.items()):
        if len({c.claimant for c in group}) > 1:
            ranked = rank_claims(group)
            evidence = tuple(
                f"{c.claimant} claimed it in {c.cid}"
                + (" (anchored)" if c.anchored_at is not None else " (not anchored)")
                for c in ranked
            )
            disputes.append(Dispute(subject, "same-work", tuple(ranked), evidence))
    seen: set[frozenset[str]] = set()
    for subject, matches in sorted((near_duplicates or {}).items()):
        for other, score in matches:
            pair = frozenset((subject, other))
            if other == subject or pair in seen:
                continue
            seen.add(pair)
            group = by_subject.get(subject, []) + by_subject.get(other, [])
            if len({c.claimant for c in group}) < 2:
                continue
            ranked = rank_claims(group)
            evidence = (
                f"{subject} and {other} are near-duplicates (similarity {score:.2f})",
                *(f"{c.claimant} claimed {c.subject} in {c.cid}" for c in ranked),
            )
            disputes.append(Dispute(ranked[0].subject, "near-duplicate", tuple(ranked), evidence))
    return disputes
