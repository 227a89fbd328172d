"""Fetching blocks: ``get_block`` and the I/O around :class:`~p2p.bitswap.wantlist.WantTracker`.

Received blocks are hashed in a worker thread (hashlib releases the GIL, so the event loop
keeps moving bytes meanwhile); a block is accepted only if its bytes hash to a CID we want,
checked again with ``Block.checked`` against that CID, and stored before anyone waiting for
it is woken -- so a returned block is always already in the store. Bytes that match nothing
we asked for are refused and reported (``on_bad_block``), and the CID is asked elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import trio
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import PeerInfo

from dag import CID, Block, Blockstore, cid_to_str, identity_data
from dag.errors import BlockNotFound, DagError

from .errors import BlockUnavailable, MessageError
from .messages import Message, PayloadBlock, PresenceType
from .stats import BitswapStats
from .wantlist import Send, Unwanted, WantTracker

__all__ = ["BlockClient", "FindProviders", "OnBadBlock"]

log = logging.getLogger("artdag.p2p.bitswap")

FindProviders = Callable[[CID], Awaitable[list[PeerInfo]]]
OnBadBlock = Callable[[PeerID, CID], None]


@dataclass(slots=True)
class _Waiter:
    cid: CID
    done: trio.Event = field(default_factory=trio.Event)
    data: bytes | None = None
    error: BaseException | None = None


def _hash_all(blocks: list[PayloadBlock], max_bytes: int) -> list[Block | MessageError]:
    out: list[Block | MessageError] = []
    for payload in blocks:
        if len(payload.data) > max_bytes:
            out.append(MessageError(f"block of {len(payload.data)} bytes exceeds {max_bytes}"))
            continue
        try:
            out.append(payload.prefix.block_for(payload.data))
        except MessageError as exc:
            out.append(exc)
    return out


class BlockClient:
    def __init__(
        self,
        store: Blockstore,
        stats: BitswapStats,
        *,
        peers: Callable[[], list[str]],
        deliver: Callable[[list[Send]], None],
        peer_id_of: Callable[[str], PeerID],
        blocks_added: Callable[[list[bytes]], None],
        max_block_bytes: int,
        on_bad_block: OnBadBlock | None = None,
        block_timeout: float = 15.0,
    ) -> None:
        self.store = store
        self.stats = stats
        self.tracker = WantTracker(block_timeout=block_timeout)
        self._peers = peers
        self._deliver = deliver
        self._peer_id_of = peer_id_of
        self._blocks_added = blocks_added
        self._max_block_bytes = max_block_bytes
        self._on_bad_block = on_bad_block
        self._waiters: dict[bytes, _Waiter] = {}
        self._storing: set[bytes] = set()  # accepted, being written; waiters are woken after

    # -- public ----------------------------------------------------------------------------
    async def get_block(self, cid: CID, *, timeout: float | None = None) -> bytes:
        return (await self.get_block_noting_origin(cid, timeout=timeout))[0]

    async def get_block_noting_origin(
        self, cid: CID, *, timeout: float | None = None
    ) -> tuple[bytes, bool]:
        """(bytes, fetched): ``fetched`` is False if the store already held the block."""
        inlined = identity_data(cid)
        if inlined is not None:  # an identity CID holds its block: never ask a peer for it
            return inlined, False
        try:
            return await self.store.get(cid), False
        except BlockNotFound:
            pass
        key = bytes(cid.digest)
        waiter = self._waiters.get(key)
        if waiter is None:
            waiter = self._waiters[key] = _Waiter(cid)
        if key not in self._storing:
            self._deliver(self.tracker.want(cid, trio.current_time(), self._peers()))
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                await waiter.done.wait()
        except trio.TooSlowError:
            tried = self.tracker.tried_peers(cid)
            self._give_up(cid, key)
            raise BlockUnavailable(cid, tried, timeout) from None
        except BaseException:
            self._give_up(cid, key)
            raise
        if waiter.error is not None:
            raise waiter.error
        assert waiter.data is not None
        return waiter.data, True

    def _give_up(self, cid: CID, key: bytes) -> None:
        sends = self.tracker.give_up(cid)
        if key not in self.tracker:
            self._waiters.pop(key, None)
        self._deliver(sends)

    # -- events ----------------------------------------------------------------------------
    async def message_received(self, peer: str, msg: Message) -> None:
        now = trio.current_time()
        peers = self._peers()
        sends: list[Send] = []
        if msg.blocks:
            sends += await self._blocks_received(peer, msg.blocks, now, peers)
        for presence in msg.presences:
            key = bytes(presence.cid.digest)
            if presence.type == PresenceType.HAVE:
                sends += self.tracker.have(peer, key, now, peers)
            else:
                sends += self.tracker.dont_have(peer, key, now, peers)
        self._deliver(sends)

    async def _blocks_received(
        self, peer: str, payloads: list[PayloadBlock], now: float, peers: list[str]
    ) -> list[Send]:
        hashed = await trio.to_thread.run_sync(_hash_all, payloads, self._max_block_bytes)
        sends: list[Send] = []
        accepted: list[Block] = []
        for payload, result in zip(payloads, hashed, strict=True):
            if isinstance(result, MessageError):
                # Bytes we cannot even hash as their prefix says: judge them by the prefix.
                log.info("peer %s sent an unusable block: %s", peer, result)
                sends += self._unwanted(peer, b"", payload, now, peers)
                continue
            key = bytes(result.cid.digest)
            cid, more = self.tracker.block_received(peer, key)
            sends += more
            if cid is None:
                sends += self._unwanted(peer, key, payload, now, peers)
                continue
            try:
                block = result if result.cid == cid else Block.checked(cid, payload.data)
            except DagError:  # cannot happen: same multihash; kept as the last gate
                sends += self._bad(peer, cid, now, peers)
                continue
            accepted.append(block)
            self.stats.count(peer, blocks_received=1, bytes_received=len(block.data))
        if accepted:
            await self._store(accepted)
        return sends

    def _unwanted(
        self, peer: str, key: bytes, payload: PayloadBlock, now: float, peers: list[str]
    ) -> list[Send]:
        kind, meant, sends = self.tracker.unwanted_block(peer, key, payload.prefix, now, peers)
        if kind is Unwanted.DUPLICATE:
            self.stats.count(peer, dup_blocks=1)
        elif kind is Unwanted.UNSOLICITED:
            self.stats.count(peer, unwanted_blocks=1)
        else:
            assert meant is not None
            self._report_bad(peer, meant)
        return sends

    def _bad(self, peer: str, cid: CID, now: float, peers: list[str]) -> list[Send]:
        self._report_bad(peer, cid)
        return self.tracker.bad_block(peer, cid, now, peers)

    def _report_bad(self, peer: str, cid: CID) -> None:
        self.stats.count(peer, bad_blocks=1)
        log.warning("peer %s sent bytes that do not match %s; refused", peer, cid_to_str(cid))
        if self._on_bad_block is not None:
            try:
                self._on_bad_block(self._peer_id_of(peer), cid)
            except Exception:
                log.exception("on_bad_block callback failed")

    async def _store(self, blocks: list[Block]) -> None:
        error: BaseException | None = None
        keys = [bytes(b.cid.digest) for b in blocks]
        self._storing.update(keys)
        try:
            await self.store.put_many(blocks)
        except DagError as exc:
            log.error("cannot store fetched blocks: %s", exc)
            error = exc
        finally:
            self._storing.difference_update(keys)
        for key, block in zip(keys, blocks, strict=True):
            waiter = self._waiters.pop(key, None)
            if waiter is not None:
                waiter.data, waiter.error = block.data, error
                waiter.done.set()
        if error is None:
            self._blocks_added(keys)

    def peer_connected(self, peer: str) -> None:
        self._deliver(self.tracker.peer_connected(peer, trio.current_time(), self._peers()))

    def peer_gone(self, peer: str) -> None:
        self._deliver(self.tracker.peer_gone(peer, trio.current_time(), self._peers()))

    def tick(self) -> list[CID]:
        """Time-outs and re-asks; returns the CIDs worth a provider lookup."""
        self._deliver(self.tracker.tick(trio.current_time(), self._peers()))
        return self.tracker.stuck()

    def wanted(self) -> Iterable[CID]:
        return self.tracker.wanted()
