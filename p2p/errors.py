"""Errors of the P2P layer; each message is one line a person can act on."""

from __future__ import annotations

__all__ = ["P2PError"]


class P2PError(Exception):
    """A network operation failed or was refused (bad address, key, peer or message)."""
