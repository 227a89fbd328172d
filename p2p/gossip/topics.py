"""The gossip topics artdag speaks, and builders for the signed envelopes they carry.

A topic is one :class:`TopicSpec` in :data:`DEFAULT_TOPICS`; adding one means adding its
record types to ``provenance/record_types.py`` (with the ``topic``, ``created`` and ``nonce``
envelope fields), a spec here, and a builder if callers need one (:func:`envelope` makes any).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from multiformats import CID

from provenance import Identity, sign_record, utc_timestamp, validate_record

from .validation import TopicSpec

__all__ = [
    "CLAIMS",
    "DEFAULT_TOPICS",
    "HEADS",
    "JOBS",
    "MARKET_TYPES",
    "envelope",
    "make_claim_announce",
    "make_head_message",
]


def _head_signed_by_repo_owner(record: dict[str, Any]) -> str | None:
    if record.get("repo") != record.get("signer"):
        return f"head of repo {record.get('repo')} signed by {record.get('signer')}"
    return None


HEADS = TopicSpec(
    "/artdag/1/heads",
    max_bytes=2048,
    accepted_types=frozenset({"head"}),
    max_age_s=300,
    extra_check=_head_signed_by_repo_owner,
)
"""A creator's repo has a new head: ``{repo, seq, head}`` signed by the repo's owner."""

CLAIMS = TopicSpec(
    "/artdag/1/claims",
    max_bytes=4096,
    accepted_types=frozenset({"claim-announce"}),
    max_age_s=600,
)
"""An ownership claim was made: ``{claim, subject?}``; the ``claim`` record type comes later."""

MARKET_TYPES = frozenset(
    {"job", "offer", "decline", "lease", "heartbeat", "result", "release", "job-close"}
)
JOBS = TopicSpec(
    "/artdag/1/jobs",
    max_bytes=16 * 1024,
    accepted_types=MARKET_TYPES,
    max_age_s=120,
)
"""The render market: jobs, offers, leases, heartbeats, results (with their signed receipt
inline) and job closes. Who may send which message for a job is the market's business
(``renderer.market``); here each message only has to be well formed, fresh and signed."""

DEFAULT_TOPICS: tuple[TopicSpec, ...] = (HEADS, CLAIMS, JOBS)


def envelope(type_name: str, topic: TopicSpec | str, **payload: Any) -> dict[str, Any]:
    """An unsigned envelope of ``type_name`` for ``topic``: payload + topic, created, nonce."""
    name = topic.name if isinstance(topic, TopicSpec) else topic
    record = {
        "type": type_name,
        "version": 1,
        "topic": name,
        "created": utc_timestamp(),
        "nonce": secrets.token_bytes(16),
        **payload,
    }
    validate_record(record)
    return record


def make_head_message(
    identity: Identity, seq: int, head: CID, blocks: Sequence[bytes] = ()
) -> dict[str, Any]:
    """A signed ``head`` message: ``identity``'s repo now ends at commit ``head`` (``seq``).
    ``blocks`` (the commit and its record, when small) ride along inline."""
    payload: dict[str, Any] = {"repo": identity.did, "seq": seq, "head": head}
    if blocks:
        payload["blocks"] = list(blocks)
    return sign_record(envelope("head", HEADS, **payload), identity)


def make_claim_announce(
    identity: Identity, claim: CID, subject: CID | None = None
) -> dict[str, Any]:
    """A signed ``claim-announce`` message pointing at the claim record ``claim``."""
    payload: dict[str, Any] = {"claim": claim}
    if subject is not None:
        payload["subject"] = subject
    return sign_record(envelope("claim-announce", CLAIMS, **payload), identity)
