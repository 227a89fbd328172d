"""What other peers want from us, and in which order we answer them (sans-I/O).

The serving side's state, kept apart from streams and the store like h11's state machine:
wantlists go in (:meth:`ServerLedger.receive`), batches of tasks come out
(:meth:`ServerLedger.take`), and the I/O layer reports what it did with each task
(:meth:`ServerLedger.served`). Theory of operation:

* Each peer has a wantlist (at most ``max_wants_per_peer`` entries; more are dropped and
  counted) and a FIFO of tasks: wants not answered yet. Kubo numbers its priorities in request
  order, so FIFO is its priority order too.
* Peers with tasks wait in one round-robin queue; :meth:`take` hands out a few tasks of the
  peer at the front and puts the peer at the back, so a peer that asks for a whole archive
  cannot starve one that asks for a single block, and no peer has more than two batches in
  the works at once (one being read, one being written). Memory is bounded by the cap: a
  task is a CID, never block bytes; bytes are read only when a batch is sent.
* As go-bitswap does, a want is forgotten once answered with a block or a HAVE; a want we
  could not satisfy stays in the wantlist, and :meth:`block_added` turns it back into a task
  when the block arrives later. Cancels and ``full`` wantlists remove wants.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .messages import WantEntry, WantType

__all__ = ["ServeTask", "ServerLedger"]

Key = bytes  # a CID's multihash: raw and dag-pb views of the same bytes are one block


@dataclass(frozen=True, slots=True)
class ServeTask:
    entry: WantEntry

    @property
    def key(self) -> Key:
        return bytes(self.entry.cid.digest)


@dataclass(slots=True)
class _PeerLedger:
    wants: dict[Key, WantEntry] = field(default_factory=dict)
    tasks: OrderedDict[Key, ServeTask] = field(default_factory=OrderedDict)


class ServerLedger:
    def __init__(self, *, max_wants_per_peer: int = 8192, max_batches_per_peer: int = 2) -> None:
        self.max_wants_per_peer = max_wants_per_peer
        self.max_batches_per_peer = max_batches_per_peer
        self.dropped_wants = 0
        self._peers: dict[str, _PeerLedger] = {}
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()
        self._active: dict[str, int] = {}  # batches taken and not yet finished, per peer

    # -- input -----------------------------------------------------------------------------
    def receive(self, peer: str, entries: Iterable[WantEntry], full: bool = False) -> bool:
        """Apply a received wantlist; True if there is new work."""
        led = self._peers.setdefault(peer, _PeerLedger())
        entries = list(entries)
        if full:
            keep = {bytes(e.cid.digest) for e in entries if not e.cancel}
            for key in [k for k in led.wants if k not in keep]:
                del led.wants[key]
                led.tasks.pop(key, None)
        for entry in entries:
            key = bytes(entry.cid.digest)
            if entry.cancel:
                led.wants.pop(key, None)
                led.tasks.pop(key, None)
                continue
            old = led.wants.get(key)
            if old is not None and old.want_type == WantType.BLOCK:
                # A want-have never downgrades a want-block.
                if entry.want_type == WantType.HAVE:
                    continue
            elif old is None and len(led.wants) >= self.max_wants_per_peer:
                self.dropped_wants += 1
                continue
            led.wants[key] = entry
            led.tasks[key] = ServeTask(entry)
        if not led.wants:
            del self._peers[peer]
            return False
        return self._mark_ready(peer)

    def block_added(self, key: Key) -> bool:
        """A block arrived in our store; peers still waiting for it get a task again."""
        work = False
        for peer, led in self._peers.items():
            entry = led.wants.get(key)
            if entry is not None and key not in led.tasks:
                led.tasks[key] = ServeTask(entry)
                work = self._mark_ready(peer) or work
        return work

    def peer_gone(self, peer: str) -> None:
        self._peers.pop(peer, None)
        if peer in self._queued:
            self._queued.discard(peer)
            self._ready.remove(peer)

    # -- output ----------------------------------------------------------------------------
    def take(self, max_tasks: int) -> tuple[str, list[ServeTask]] | None:
        """Up to ``max_tasks`` tasks of the next peer in turn, or None when nobody waits.

        A peer already has at most ``max_batches_per_peer`` batches in the works (two let a
        disk read overlap a network write), so a peer that reads slowly cannot hold every
        worker. Call :meth:`finished` when a batch is done."""
        for _ in range(len(self._ready)):
            peer = self._ready.popleft()
            self._queued.discard(peer)
            led = self._peers.get(peer)
            if led is None or not led.tasks:
                continue
            if self._active.get(peer, 0) >= self.max_batches_per_peer:
                self._mark_ready(peer)  # its turn comes again after the others
                continue
            batch: list[ServeTask] = []
            while led.tasks and len(batch) < max_tasks:
                _key, task = led.tasks.popitem(last=False)
                batch.append(task)
            self._active[peer] = self._active.get(peer, 0) + 1
            if led.tasks:
                self._mark_ready(peer)
            return peer, batch
        return None

    def finished(self, peer: str) -> bool:
        """A batch of ``peer`` went out (or failed); True if this frees work for a worker."""
        left = self._active.get(peer, 0) - 1
        if left > 0:
            self._active[peer] = left
        else:
            self._active.pop(peer, None)
        return self._mark_ready(peer)

    def give_back(self, peer: str, tasks: list[ServeTask]) -> None:
        """Tasks taken but not sent (the message was full): first in line next time."""
        led = self._peers.get(peer)
        if led is None:
            return
        for task in reversed(tasks):
            if led.wants.get(task.key) == task.entry and task.key not in led.tasks:
                led.tasks[task.key] = task
                led.tasks.move_to_end(task.key, last=False)
        if led.tasks:
            self._mark_ready(peer)

    def served(self, peer: str, task: ServeTask, *, answered: bool) -> None:
        """Report a task done; ``answered`` = a block or a HAVE went out (the want is settled)."""
        led = self._peers.get(peer)
        if led is None or not answered:
            return
        if led.wants.get(task.key) == task.entry:
            del led.wants[task.key]
            if not led.wants:
                self.peer_gone(peer)

    # -- inspection ------------------------------------------------------------------------
    @property
    def has_work(self) -> bool:
        return bool(self._ready)

    def wantlist(self, peer: str) -> list[WantEntry]:
        led = self._peers.get(peer)
        return list(led.wants.values()) if led else []

    def pending(self, peer: str) -> int:
        led = self._peers.get(peer)
        return len(led.tasks) if led else 0

    def _mark_ready(self, peer: str) -> bool:
        led = self._peers.get(peer)
        if led is None or not led.tasks:
            return False
        if peer not in self._queued:
            self._queued.add(peer)
            self._ready.append(peer)
        return True
