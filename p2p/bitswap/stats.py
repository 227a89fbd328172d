"""Counters of what bitswap moved, per peer and in total."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["BitswapStats", "PeerStats"]


@dataclass(slots=True)
class PeerStats:
    blocks_sent: int = 0
    bytes_sent: int = 0
    blocks_received: int = 0
    bytes_received: int = 0
    dup_blocks: int = 0
    bad_blocks: int = 0  # bytes that did not match the CID asked for; refused
    unwanted_blocks: int = 0  # blocks nobody asked for; dropped
    malformed_messages: int = 0  # the stream was dropped


@dataclass(slots=True)
class BitswapStats:
    """Totals (same names as :class:`PeerStats`) and ``peers``: per-peer counters by peer id."""

    blocks_sent: int = 0
    bytes_sent: int = 0
    blocks_received: int = 0
    bytes_received: int = 0
    dup_blocks: int = 0
    bad_blocks: int = 0
    unwanted_blocks: int = 0
    malformed_messages: int = 0
    peers: dict[str, PeerStats] = field(default_factory=dict)

    def count(self, peer: str, **deltas: int) -> None:
        stats = self.peers.get(peer)
        if stats is None:
            stats = self.peers[peer] = PeerStats()
        for name, delta in deltas.items():
            setattr(stats, name, getattr(stats, name) + delta)
            setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> BitswapStats:
        totals = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "peers"}
        copy = BitswapStats(**totals)
        for peer, stats in self.peers.items():
            copy.peers[peer] = PeerStats(**{f.name: getattr(stats, f.name) for f in fields(stats)})
        return copy
