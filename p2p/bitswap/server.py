"""Serving blocks: a few worker tasks answer every peer's wantlist out of the blockstore.

The order of work comes from :class:`~p2p.bitswap.ledger.ServerLedger` (round robin across
peers); this module only does the I/O. Each worker takes a few tasks of one peer, reads the
blocks from the store, packs them into one message of about ``message_bytes`` (3 MiB: three
1 MiB blocks, at least one block, never over go-bitswap's 4 MiB limit) and sends it on our own
stream to that peer (:mod:`p2p.bitswap.links`). Up to two batches of one peer are in the
works at once, so one is read from disk while the other is written to the network; memory
stays at about ``workers * message_bytes`` whatever the peers ask for.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from dag import CID, Block, Blockstore, cid_to_str
from dag.errors import BlockNotFound, DagError

from .ledger import ServerLedger, ServeTask
from .links import LinkError, PeerLink
from .messages import Message, Presence, PresenceType, WantType
from .stats import BitswapStats

__all__ = ["BlockServer"]

log = logging.getLogger("artdag.p2p.bitswap")

MAX_TASKS_PER_BATCH = 64
HARD_MESSAGE_BYTES = (4 << 20) - (64 << 10)  # go-bitswap reads messages up to 4 MiB


class BlockServer:
    def __init__(
        self,
        store: Blockstore,
        stats: BitswapStats,
        link_for: Callable[[str], PeerLink | None],
        on_link_failure: Callable[[PeerLink, LinkError], Awaitable[None]],
        *,
        workers: int = 3,
        message_bytes: int = 3 << 20,
        max_block_bytes: int = (2 << 20) + 1024,
        max_wants_per_peer: int = 8192,
    ) -> None:
        self.store = store
        self.stats = stats
        self.ledger = ServerLedger(max_wants_per_peer=max_wants_per_peer)
        self._link_for = link_for
        self._on_link_failure = on_link_failure
        self._workers = workers
        self._message_bytes = message_bytes
        self._max_block_bytes = max_block_bytes
        self._wake = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._worker)
            task_status.started()

    # -- events ----------------------------------------------------------------------------
    def wantlist_received(self, peer: str, msg: Message) -> None:
        if (msg.entries or msg.full) and self.ledger.receive(peer, msg.entries, msg.full):
            self._kick()

    def blocks_added(self, keys: list[bytes]) -> None:
        if any([self.ledger.block_added(key) for key in keys]):
            self._kick()

    def peer_gone(self, peer: str) -> None:
        self.ledger.peer_gone(peer)

    def _kick(self) -> None:
        self._wake.set()
        self._wake = trio.Event()

    # -- work ------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            batch = self.ledger.take(MAX_TASKS_PER_BATCH)
            if batch is None:
                await self._wake.wait()
                continue
            peer, tasks = batch
            try:
                link = self._link_for(peer)
                if link is None:
                    self.ledger.peer_gone(peer)
                    continue
                await self._serve(peer, link, tasks)
            finally:
                if self.ledger.finished(peer):
                    self._kick()

    async def _serve(self, peer: str, link: PeerLink, tasks: list[ServeTask]) -> None:
        blocks: list[Block] = []
        presences: list[Presence] = []
        outcome: list[tuple[ServeTask, bool]] = []
        size = 0
        for i, task in enumerate(tasks):
            if size >= self._message_bytes:
                self.ledger.give_back(peer, tasks[i:])
                break
            entry = task.entry
            if entry.want_type == WantType.BLOCK:
                data = await self._read(entry.cid)
                if data is None:
                    if entry.send_dont_have:
                        presences.append(Presence(entry.cid, PresenceType.DONT_HAVE))
                    outcome.append((task, False))
                    continue
                if blocks and size + len(data) > HARD_MESSAGE_BYTES:
                    self.ledger.give_back(peer, tasks[i:])  # read again next time; rare
                    break
                # The store verified these bytes against the CID when it read them.
                blocks.append(Block(entry.cid, data))
                size += len(data)
                outcome.append((task, True))
            else:
                has = await self._has(entry.cid)
                if has:
                    presences.append(Presence(entry.cid, PresenceType.HAVE))
                elif entry.send_dont_have:
                    presences.append(Presence(entry.cid, PresenceType.DONT_HAVE))
                outcome.append((task, has))
        if blocks or presences:
            try:
                await link.send(Message(presences=presences), blocks)
            except LinkError as exc:
                log.debug("%s", exc)
                self.ledger.peer_gone(peer)
                await self._on_link_failure(link, exc)
                return
            if blocks:
                self.stats.count(peer, blocks_sent=len(blocks), bytes_sent=size)
        for task, answered in outcome:
            self.ledger.served(peer, task, answered=answered)

    async def _read(self, cid: CID) -> bytes | None:
        try:
            data = await self.store.get(cid)
        except BlockNotFound:
            return None
        except DagError as exc:  # a corrupt or unreadable block is one we do not have
            log.warning("cannot serve %s: %s", cid_to_str(cid), exc)
            return None
        if len(data) > self._max_block_bytes:
            return None
        return data

    async def _has(self, cid: CID) -> bool:
        try:
            return await self.store.has(cid)
        except DagError:
            return False
