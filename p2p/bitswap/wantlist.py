"""What we want, whom we asked, and whom to ask next (sans-I/O).

The fetching side's state machine. Events go in -- a want, a HAVE, a DONT_HAVE, a block, a
bad block, a peer coming or going, the clock -- and :class:`Send` decisions come out; the I/O
layer delivers them. Nothing here touches a stream, the store or the time source.

Routing, per wanted block (a much smaller cousin of go-bitswap's sessions):

1. If a peer told us HAVE, send it a want-block (the least loaded such peer).
2. Else, if peers have delivered blocks to us before ("good" peers, most recent first), send a
   want-block to the least loaded of them: a large DAG usually lives on one peer, so this
   skips a round trip per block.
3. Else broadcast want-have to every connected peer not asked yet.

Every want is sent with ``sendDontHave`` so a peer that lacks the block says so and the next
candidate is asked at once. A peer that does not answer a want-block within
``block_timeout`` counts as lacking it. A peer that sent bytes that do not hash to the CID is
excluded for that block (and never becomes "good"). A want nobody could serve is asked again
every ``rebroadcast_interval`` (peers connected since are asked as soon as they connect).

Bitswap 1.1+ blocks carry no CID, only a prefix; their CID is what their bytes hash to.
"Wrong bytes for CID X" therefore arrives as a block whose CID nobody wanted;
:meth:`WantTracker.unwanted_block` charges it to the oldest outstanding want with the same
prefix that we sent to that peer, or calls it a late duplicate if we wanted that CID recently.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum

from dag import CID

from .messages import BlockPrefix, WantEntry, WantType

__all__ = ["Send", "Unwanted", "WantTracker"]

Key = bytes
MAX_PRIORITY = (1 << 31) - 1


@dataclass(frozen=True, slots=True)
class Send:
    peer: str
    entry: WantEntry


class Unwanted(Enum):
    DUPLICATE = "duplicate"  # we wanted it recently and got it elsewhere, or cancelled
    BAD = "bad"  # bytes that do not match what we asked this peer for
    UNSOLICITED = "unsolicited"  # we never asked anyone for it


@dataclass(slots=True)
class _Want:
    cid: CID
    priority: int
    since: float
    asked_have: dict[str, float] = field(default_factory=dict)
    asked_block: dict[str, float] = field(default_factory=dict)
    haves: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # DONT_HAVE, timed out or unreachable
    bad: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)
    idle_since: float | None = None
    providers_searched: bool = False
    waiters: int = 0


class WantTracker:
    def __init__(
        self,
        *,
        block_timeout: float = 15.0,
        rebroadcast_interval: float = 5.0,
        recent: int = 8192,
    ) -> None:
        self.block_timeout = block_timeout
        self.rebroadcast_interval = rebroadcast_interval
        self._wants: dict[Key, _Want] = {}
        self._good: OrderedDict[str, None] = OrderedDict()
        self._shunned: set[str] = set()  # peers that ever sent a bad block
        self._load: Counter[str] = Counter()  # outstanding want-blocks per peer
        self._recent: OrderedDict[Key, None] = OrderedDict()
        self._recent_max = recent
        self._priority = MAX_PRIORITY

    # -- our side --------------------------------------------------------------------------
    def want(self, cid: CID, now: float, peers: Collection[str]) -> list[Send]:
        """Start wanting ``cid`` (or join an existing want)."""
        key = bytes(cid.digest)
        want = self._wants.get(key)
        if want is not None:
            want.waiters += 1
            return []
        self._priority = self._priority - 1 if self._priority > 1 else MAX_PRIORITY
        want = _Want(cid, self._priority, now, waiters=1)
        self._wants[key] = want
        return self._route(want, now, peers)

    def give_up(self, cid: CID) -> list[Send]:
        """One waiter stopped waiting; the last one cancels the want everywhere."""
        key = bytes(cid.digest)
        want = self._wants.get(key)
        if want is None:
            return []
        want.waiters -= 1
        if want.waiters > 0:
            return []
        return self._finish(key, want, delivered_by=None)

    # -- events from peers ----------------------------------------------------------------
    def block_received(self, peer: str, key: Key) -> tuple[CID | None, list[Send]]:
        """A block whose bytes hash to ``key`` came from ``peer``: the CID it satisfies (None if
        nobody wants it any more) and cancels for the other peers we asked."""
        want = self._wants.get(key)
        if want is None:
            return None, []
        if peer not in self._shunned:
            self._good[peer] = None
            self._good.move_to_end(peer)
        return want.cid, self._finish(key, want, delivered_by=peer)

    def unwanted_block(
        self, peer: str, key: Key, prefix: BlockPrefix, now: float, peers: Collection[str]
    ) -> tuple[Unwanted, CID | None, list[Send]]:
        """Classify a block nobody wants; for a bad one, the CID it was meant to be."""
        if key in self._recent:
            return Unwanted.DUPLICATE, None, []
        suspect: _Want | None = None
        suspect_at = float("inf")
        for want in self._wants.values():
            asked = want.asked_block.get(peer, want.asked_have.get(peer))
            if asked is None or peer in want.bad or BlockPrefix.of(want.cid) != prefix:
                continue
            if asked < suspect_at:
                suspect, suspect_at = want, asked
        if suspect is None:
            return Unwanted.UNSOLICITED, None, []
        return Unwanted.BAD, suspect.cid, self.bad_block(peer, suspect.cid, now, peers)

    def bad_block(self, peer: str, cid: CID, now: float, peers: Collection[str]) -> list[Send]:
        self._shunned.add(peer)
        self._good.pop(peer, None)
        want = self._wants.get(bytes(cid.digest))
        if want is None:
            return []
        want.bad.add(peer)
        self._settle(want, peer)
        want.refused.add(peer)
        return self._route(want, now, peers)

    def have(self, peer: str, key: Key, now: float, peers: Collection[str]) -> list[Send]:
        want = self._wants.get(key)
        if want is None or peer in want.bad:
            return []
        want.asked_have.pop(peer, None)
        want.refused.discard(peer)
        if peer not in want.haves:
            want.haves.append(peer)
        return self._route(want, now, peers)

    def dont_have(self, peer: str, key: Key, now: float, peers: Collection[str]) -> list[Send]:
        want = self._wants.get(key)
        if want is None:
            return []
        self._settle(want, peer)
        want.refused.add(peer)
        if peer in want.haves:
            want.haves.remove(peer)
        return self._route(want, now, peers)

    def peer_connected(self, peer: str, now: float, peers: Collection[str]) -> list[Send]:
        sends: list[Send] = []
        for want in self._wants.values():
            if peer not in want.tried:
                sends += self._route(want, now, peers, also_ask=peer)
        return sends

    def peer_gone(self, peer: str, now: float, peers: Collection[str]) -> list[Send]:
        """``peer`` disconnected or could not be reached: re-route what it was asked."""
        self._good.pop(peer, None)
        self._load.pop(peer, None)
        sends: list[Send] = []
        for want in self._wants.values():
            if peer in want.asked_block or peer in want.asked_have or peer in want.haves:
                want.asked_block.pop(peer, None)
                want.asked_have.pop(peer, None)
                if peer in want.haves:
                    want.haves.remove(peer)
                want.refused.add(peer)
                sends += self._route(want, now, peers)
        return sends

    def tick(self, now: float, peers: Collection[str]) -> list[Send]:
        """Time out silent peers and re-ask wants that have been idle for a while."""
        sends: list[Send] = []
        for want in self._wants.values():
            changed = False
            for peer, at in list(want.asked_block.items()):
                if now - at >= self.block_timeout:
                    self._settle(want, peer)
                    want.refused.add(peer)
                    changed = True
            for peer, at in list(want.asked_have.items()):
                if now - at >= self.block_timeout:
                    del want.asked_have[peer]
                    want.refused.add(peer)
                    changed = True
            if want.idle_since is not None and now - want.idle_since >= self.rebroadcast_interval:
                want.refused = set(want.bad)
                want.idle_since = None
                changed = True
            if changed or any(p not in want.tried for p in peers):
                sends += self._route(want, now, peers)
        return sends

    # -- inspection ------------------------------------------------------------------------
    def stuck(self) -> list[CID]:
        """Wants no connected peer could serve, not yet looked up in the DHT (each once)."""
        out = []
        for want in self._wants.values():
            if want.idle_since is not None and not want.providers_searched:
                want.providers_searched = True
                out.append(want.cid)
        return out

    def tried_peers(self, cid: CID) -> set[str]:
        want = self._wants.get(bytes(cid.digest))
        return set(want.tried) if want else set()

    def wanted(self) -> list[CID]:
        return [w.cid for w in self._wants.values()]

    def __contains__(self, key: Key) -> bool:
        return key in self._wants

    def __len__(self) -> int:
        return len(self._wants)

    # -- internals -------------------------------------------------------------------------
    def _settle(self, want: _Want, peer: str) -> None:
        if want.asked_block.pop(peer, None) is not None and self._load[peer] > 0:
            self._load[peer] -= 1
        want.asked_have.pop(peer, None)

    def _finish(self, key: Key, want: _Want, delivered_by: str | None) -> list[Send]:
        del self._wants[key]
        self._recent[key] = None
        if len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)
        sends = []
        for peer in {*want.asked_block, *want.asked_have, *want.haves}:
            self._settle(want, peer)
            if peer != delivered_by:
                sends.append(Send(peer, WantEntry(want.cid, cancel=True)))
        if delivered_by is not None:
            self._settle(want, delivered_by)
        return sends

    def _entry(self, want: _Want, kind: WantType) -> WantEntry:
        return WantEntry(want.cid, kind, want.priority, cancel=False, send_dont_have=True)

    def _route(
        self, want: _Want, now: float, peers: Collection[str], also_ask: str | None = None
    ) -> list[Send]:
        usable = [p for p in peers if p not in want.refused and p not in want.bad]
        sends: list[Send] = []
        if also_ask is not None and also_ask in usable and also_ask not in want.tried:
            want.asked_have[also_ask] = now
            want.tried.add(also_ask)
            sends.append(Send(also_ask, self._entry(want, WantType.HAVE)))
        if want.asked_block:
            want.idle_since = None
            return sends
        candidates = [p for p in want.haves if p in usable]
        if not candidates:
            candidates = [p for p in reversed(self._good) if p in usable]
        if candidates:
            peer = min(candidates, key=lambda p: self._load[p])
            want.asked_block[peer] = now
            want.asked_have.pop(peer, None)
            want.tried.add(peer)
            self._load[peer] += 1
            want.idle_since = None
            return [*sends, Send(peer, self._entry(want, WantType.BLOCK))]
        for peer in usable:
            if peer not in want.asked_have:
                want.asked_have[peer] = now
                want.tried.add(peer)
                sends.append(Send(peer, self._entry(want, WantType.HAVE)))
        if want.asked_have:
            want.idle_since = None
        elif want.idle_since is None:
            want.idle_since = now
        return sends
