"""Errors of the bitswap package; each message is one line a person can act on."""

from __future__ import annotations

from collections.abc import Iterable

from dag import CID, cid_to_str

from ..errors import P2PError

__all__ = ["BitswapError", "BlockUnavailable", "MessageError"]


class BitswapError(P2PError):
    """Base class of bitswap errors."""


class MessageError(BitswapError, ValueError):
    """A peer sent bytes that are not a valid bitswap message (the stream is dropped)."""


class BlockUnavailable(BitswapError):
    """No peer delivered a block within the time allowed."""

    def __init__(self, cid: CID, tried_peers: Iterable[str], timeout: float | None = None) -> None:
        self.cid = cid
        self.tried_peers = sorted(tried_peers)
        within = f" within {timeout:g} s" if timeout is not None else ""
        if self.tried_peers:
            shown = ", ".join(p[-8:] for p in self.tried_peers[:5])
            more = f" and {len(self.tried_peers) - 5} more" if len(self.tried_peers) > 5 else ""
            asked = f"asked {len(self.tried_peers)} peer(s): …{shown}{more}"
        else:
            asked = "no connected peer speaks bitswap"
        super().__init__(f"block {cid_to_str(cid)} not found{within} ({asked})")
