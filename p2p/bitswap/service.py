"""The bitswap service: one object that serves our blocks and fetches what we lack.

It wires the pieces to a libp2p host: stream handlers for every bitswap protocol id
(inbound streams are only ever read), a network notifee (a new peer is asked for everything
we want; a lost one is dropped from every plan), one :class:`~p2p.bitswap.links.PeerLink` per
peer for everything we send, the serving workers (:mod:`p2p.bitswap.server`), the fetching
side (:mod:`p2p.bitswap.client`) and a ticker for time-outs, re-asks and DHT provider lookups.

A malformed message or an oversized frame drops that stream and is counted against the peer
(``stats.peers[peer].malformed_messages``); nothing a peer sends can raise out of a handler.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from functools import partial

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID
from multiaddr import Multiaddr

from dag import CID, Blockstore, first_error

from .client import BlockClient, FindProviders, OnBadBlock
from .errors import MessageError
from .fetch import FetchResult, Progress, fetch_dag
from .framing import FrameReader
from .links import LinkError, PeerLink
from .messages import PROTOCOLS, Message, WantEntry, decode_message
from .server import BlockServer
from .stats import BitswapStats
from .wantlist import Send

__all__ = ["Bitswap"]

log = logging.getLogger("artdag.p2p.bitswap")

MIB = 1 << 20
STANDARD_MAX_MESSAGE = 4 * MIB  # what go-bitswap accepts
TICK_SECONDS = 0.5
RECEIVE_QUEUE = 2  # decoded messages waiting per inbound stream (each at most 4 MiB)
NOT_BITSWAP_SECONDS = 60.0  # how long a peer that refused the protocol is left alone


class Bitswap:
    """Bitswap 1.2.0 (answers 1.1.0 and 1.0.0 peers too) over ``host``, backed by ``store``.

    Start it with ``await nursery.start(bitswap.run)``; it stops when that task is cancelled.
    """

    def __init__(
        self,
        host: IHost,
        store: Blockstore,
        *,
        max_inflight: int = 32,
        max_block_bytes: int = 2 * MIB + 1024,
        find_providers: FindProviders | None = None,
        on_bad_block: OnBadBlock | None = None,
        block_timeout: float = 15.0,
        server_workers: int = 3,
    ) -> None:
        self.host = host
        self.store = store
        self.max_inflight = max_inflight
        self.max_block_bytes = max_block_bytes
        self.max_message_bytes = max(STANDARD_MAX_MESSAGE, max_block_bytes + 16 * 1024)
        self.find_providers = find_providers
        self.stats = BitswapStats()
        self._self_key = host.get_id().to_string()
        self._links: dict[str, PeerLink] = {}
        self._peer_ids: dict[str, PeerID] = {}
        self._keys: dict[PeerID, str] = {}
        self._not_bitswap: dict[str, float] = {}
        self._nursery: trio.Nursery | None = None
        self._provider_limit = trio.CapacityLimiter(4)
        self.server = BlockServer(
            store,
            self.stats,
            self._link_for,
            self._link_failed,
            workers=server_workers,
            max_block_bytes=max_block_bytes,
        )
        self.client = BlockClient(
            store,
            self.stats,
            peers=self._bitswap_peers,
            deliver=self._deliver,
            peer_id_of=self._peer_id,
            blocks_added=self.server.blocks_added,
            max_block_bytes=max_block_bytes,
            on_bad_block=on_bad_block,
            block_timeout=block_timeout,
        )

    # -- lifetime --------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[tuple[str, PeerID]](math.inf)
        notifee = _Notifee(send)
        network = self.host.get_network()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.server.run)
                for protocol in PROTOCOLS:
                    self.host.set_stream_handler(TProtocol(protocol), self._handle_stream)
                network.register_notifee(notifee)
                nursery.start_soon(self._peer_events, receive)
                nursery.start_soon(self._ticker)
                task_status.started()
        finally:
            self._nursery = None
            for protocol in PROTOCOLS:
                self.host.remove_stream_handler(TProtocol(protocol))
            remove = getattr(network, "remove_notifee", None)
            if remove is not None:
                remove(notifee)
            links, self._links = list(self._links.values()), {}
            with trio.CancelScope(shield=True):
                for link in links:
                    await link.aclose()

    # -- public API ------------------------------------------------------------------------
    async def get_block(self, cid: CID, *, timeout: float | None = None) -> bytes:
        """The block's bytes: from the store, else from peers (verified and stored first).

        Raises BlockUnavailable if no peer delivers it within ``timeout`` seconds (None: wait
        until cancelled; peers that connect meanwhile are asked too)."""
        return await self.client.get_block(cid, timeout=timeout)

    async def fetch_dag(
        self,
        root: CID,
        *,
        progress: Progress | None = None,
        timeout: float | None = 60.0,
    ) -> FetchResult:
        """Fetch every block reachable from ``root`` that the store lacks (pins nothing).

        ``timeout`` applies to each block: BlockUnavailable names the first block no peer
        delivered within it. ``progress(blocks_done, blocks_known)`` is called per block."""
        return await fetch_dag(
            partial(self.client.get_block_noting_origin, timeout=timeout),
            root,
            max_inflight=self.max_inflight,
            progress=progress,
        )

    def notify_new_blocks(self, cids: Iterable[CID]) -> None:
        """Blocks added to the store by someone else (an import): peers waiting get them."""
        self.server.blocks_added([bytes(cid.digest) for cid in cids])

    def wanted(self) -> list[CID]:
        """CIDs we are currently asking peers for."""
        return list(self.client.wanted())

    def wantlist_of(self, peer: PeerID) -> list[WantEntry]:
        """What ``peer`` currently wants from us."""
        return self.server.ledger.wantlist(peer.to_string())

    # -- peers and links -------------------------------------------------------------------
    def _peer_id(self, key: str) -> PeerID:
        pid = self._peer_ids.get(key)
        if pid is None:
            pid = self._peer_ids[key] = PeerID.from_base58(key)
        return pid

    def _key(self, pid: PeerID) -> str:
        key = self._keys.get(pid)
        if key is None:
            if len(self._keys) > 4096:  # peers come and go; both maps are only caches
                self._keys.clear()
                self._peer_ids.clear()
            key = self._keys[pid] = pid.to_string()
            self._peer_ids[key] = pid
        return key

    def _bitswap_peers(self) -> list[str]:
        """Connected peers worth asking (called per event, so peer ids are encoded once)."""
        now = trio.current_time()
        out = []
        for pid in self.host.get_connected_peers():
            key = self._key(pid)
            until = self._not_bitswap.get(key)
            if until is not None:
                if until > now:
                    continue
                del self._not_bitswap[key]
            if key != self._self_key:
                out.append(key)
        return out

    def _link_for(self, key: str) -> PeerLink | None:
        link = self._links.get(key)
        if link is not None:
            return link
        if self._nursery is None:
            return None
        link = PeerLink(self.host, self._peer_id(key), self._link_failed)
        self._links[key] = link
        self._nursery.start_soon(link.run_want_sender)
        return link

    async def _link_failed(self, link: PeerLink, exc: LinkError) -> None:
        if self._links.get(link.key) is link:
            del self._links[link.key]
        await link.aclose()
        if exc.negotiation:
            self._not_bitswap[link.key] = trio.current_time() + NOT_BITSWAP_SECONDS
        self.server.peer_gone(link.key)
        self.client.peer_gone(link.key)

    def _deliver(self, sends: list[Send]) -> None:
        by_peer: dict[str, list[WantEntry]] = defaultdict(list)
        for send in sends:
            by_peer[send.peer].append(send.entry)
        for key, entries in by_peer.items():
            link = self._link_for(key)
            if link is not None:
                link.queue_wants(entries)

    async def _peer_events(self, receive: trio.MemoryReceiveChannel[tuple[str, PeerID]]) -> None:
        async for kind, pid in receive:
            key = self._key(pid)
            if kind == "up":
                self.client.peer_connected(key)
            elif pid not in self.host.get_connected_peers():
                link = self._links.pop(key, None)
                if link is not None:
                    await link.aclose()
                self.server.peer_gone(key)
                self.client.peer_gone(key)

    async def _ticker(self) -> None:
        while True:
            await trio.sleep(TICK_SECONDS)
            stuck = self.client.tick()
            if self.find_providers is not None and self._nursery is not None:
                for cid in stuck:
                    self._nursery.start_soon(self._find_and_connect, cid)

    async def _find_and_connect(self, cid: CID) -> None:
        assert self.find_providers is not None
        async with self._provider_limit:
            try:
                with trio.move_on_after(30):
                    infos = await self.find_providers(cid)
            except Exception as exc:
                log.info("provider lookup failed: %r", exc)
                return
            connected = set(self.host.get_connected_peers())
            for info in infos or []:
                if info.peer_id in connected or info.peer_id == self.host.get_id():
                    continue
                try:
                    with trio.fail_after(10):
                        await self.host.connect(info)
                except Exception as exc:
                    log.info("cannot reach provider %s: %r", info.peer_id, exc)
                    continue
                self.client.peer_connected(self._key(info.peer_id))

    # -- inbound streams -------------------------------------------------------------------
    async def _handle_stream(self, stream: INetStream) -> None:
        key = self._key(stream.muxed_conn.peer_id)
        try:
            async with trio.open_nursery() as nursery:
                send, receive = trio.open_memory_channel[Message](RECEIVE_QUEUE)
                nursery.start_soon(self._process_received, key, receive)
                async with send:
                    await self._read_stream(key, stream, send)
        except BaseExceptionGroup as group:
            error = first_error(group)
            if isinstance(error, trio.Cancelled):
                raise
            await self._stream_failed(key, stream, error)
        except Exception as exc:
            await self._stream_failed(key, stream, exc)

    async def _read_stream(
        self, key: str, stream: INetStream, send: trio.MemorySendChannel[Message]
    ) -> None:
        """Wantlists are applied at once; blocks and presences go to the processing task, so
        hashing and storing one message overlaps with reading the next."""
        reader = FrameReader(stream, self.max_message_bytes)
        while True:
            raw = await reader.next()
            if raw is None:
                return
            msg = decode_message(raw)
            del raw
            self.server.wantlist_received(key, msg)
            if msg.blocks or msg.presences:
                await send.send(msg)

    async def _process_received(
        self, key: str, receive: trio.MemoryReceiveChannel[Message]
    ) -> None:
        async with receive:
            async for msg in receive:
                await self.client.message_received(key, msg)

    async def _stream_failed(self, key: str, stream: INetStream, exc: BaseException) -> None:
        if isinstance(exc, MessageError):
            self.stats.count(key, malformed_messages=1)
            log.info("dropping bitswap stream from %s: %s", key, exc)
            await _reset(stream)
        else:  # stream reset, connection gone, store failure, ...
            log.debug("bitswap stream from %s ended: %r", key, exc)
            await _reset(stream)


async def _reset(stream: INetStream) -> None:
    try:
        with trio.move_on_after(1):
            await stream.reset()
    except Exception as exc:
        log.debug("stream reset failed: %r", exc)


class _Notifee(INotifee):
    """Forwards connects and disconnects to the service without blocking the swarm."""

    def __init__(self, send: trio.MemorySendChannel[tuple[str, PeerID]]) -> None:
        self._send = send

    def _post(self, kind: str, conn: INetConn) -> None:
        with contextlib.suppress(
            trio.ClosedResourceError, trio.BrokenResourceError, AttributeError
        ):
            self._send.send_nowait((kind, conn.muxed_conn.peer_id))

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._post("up", conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._post("down", conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None
