"""Signed gossip topics: envelopes, validators, peer scores and the GossipSub adapter."""

from __future__ import annotations

from .scores import PeerScores, PeerStats
from .service import Delivered, Gossip, GossipError
from .settings import DEFAULT_SETTINGS, GossipSettings
from .topics import (
    CLAIMS,
    DEFAULT_TOPICS,
    HEADS,
    JOBS,
    MARKET_TYPES,
    envelope,
    make_claim_announce,
    make_head_message,
)
from .validation import REJECT_REASONS, Accept, DuplicateCache, Reject, TopicSpec, validate

__all__ = [
    "CLAIMS",
    "DEFAULT_SETTINGS",
    "DEFAULT_TOPICS",
    "HEADS",
    "JOBS",
    "MARKET_TYPES",
    "REJECT_REASONS",
    "Accept",
    "Delivered",
    "DuplicateCache",
    "Gossip",
    "GossipError",
    "GossipSettings",
    "PeerScores",
    "PeerStats",
    "Reject",
    "TopicSpec",
    "envelope",
    "make_claim_announce",
    "make_head_message",
    "validate",
]
