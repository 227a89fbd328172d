"""Errors raised by the provenance layer. Each message is one line a person can act on."""

from __future__ import annotations

__all__ = ["ProvenanceError", "IdentityError", "SignatureError", "RecordError"]


class ProvenanceError(Exception):
    """Base class for every error of the provenance layer."""


class IdentityError(ProvenanceError, ValueError):
    """A did:key is malformed, or a key file is missing, unreadable, unsafe or not a key."""


class SignatureError(ProvenanceError, ValueError):
    """A signed record has no signer or signature, or the signature does not verify."""


class RecordError(ProvenanceError, ValueError):
    """A record does not match the schema of its ``type`` or cannot be encoded as DAG-CBOR."""
