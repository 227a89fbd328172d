"""Finding peers: a bootstrap list, mDNS on the LAN, and the Kademlia DHT for provider records.

py-libp2p's mDNS fills the peerstore but never dials (docs/decisions.md), and its bootstrap helper
is tied to the host's own start-up; here the daemon keeps the policy: bootstrap peers are dialled at
start and re-dialled with backoff while they are unreachable, every peer mDNS reports is dialled
once, and every new connection is added to the DHT routing table so ``provide`` and
``find_providers`` have somewhere to go. ``PeerDialer`` is the sans-I/O part: which peers to
dial and when, given what has been seen and what failed.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service

from .errors import P2PError

__all__ = ["Discovery", "PeerDialer"]

log = logging.getLogger("artdag.p2p.discovery")

MAX_BACKOFF_S = 300.0
RECHECK_S = 5.0


@dataclass
class _DialState:
    addrs: list[multiaddr.Multiaddr]
    failures: int = 0
    next_try: float = 0.0
    persistent: bool = False  # bootstrap peers are retried forever


@dataclass
class PeerDialer:
    """Which peers to dial now. Pure: the caller supplies the clock and reports results."""

    base_backoff_s: float = 1.0
    max_backoff_s: float = MAX_BACKOFF_S
    max_attempts: int = 5  # for non-persistent (mDNS) peers
    peers: dict[PeerID, _DialState] = field(default_factory=dict)

    def add(self, info: PeerInfo, *, persistent: bool, now: float) -> None:
        state = self.peers.get(info.peer_id)
        if state is None:
            self.peers[info.peer_id] = _DialState(list(info.addrs), persistent=persistent)
            self.peers[info.peer_id].next_try = now
        else:
            known = {str(a) for a in state.addrs}
            state.addrs += [a for a in info.addrs if str(a) not in known]
            state.persistent = state.persistent or persistent

    def due(self, now: float, connected: set[PeerID]) -> list[PeerInfo]:
        return [
            PeerInfo(pid, s.addrs)
            for pid, s in self.peers.items()
            if pid not in connected and s.next_try <= now
        ]

    def failed(self, peer: PeerID, now: float) -> None:
        state = self.peers.get(peer)
        if state is None:
            return
        state.failures += 1
        if not state.persistent and state.failures >= self.max_attempts:
            del self.peers[peer]
            return
        delay = min(self.max_backoff_s, self.base_backoff_s * math.pow(2, state.failures - 1))
        state.next_try = now + delay

    def succeeded(self, peer: PeerID, now: float) -> None:
        state = self.peers.get(peer)
        if state is None:
            return
        state.failures = 0
        # Checked again after a while in case the connection drops (bootstrap peers only).
        state.next_try = now + self.base_backoff_s
        if not state.persistent:
            del self.peers[peer]

    def next_wakeup(self, now: float, connected: set[PeerID]) -> float:
        """Seconds until a peer that is not connected is due (inf: none is)."""
        times = [s.next_try for pid, s in self.peers.items() if pid not in connected]
        return max(0.0, min(times) - now) if times else math.inf


def parse_bootstrap(addrs: Sequence[str]) -> list[PeerInfo]:
    out = []
    for addr in addrs:
        try:
            out.append(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
        except Exception as exc:
            raise P2PError(f"bad bootstrap address {addr!r}: {exc}") from None
    return out


class Discovery:
    """Keeps the host connected to its bootstrap peers and to what mDNS finds; runs the DHT."""

    def __init__(
        self,
        host: IHost,
        *,
        bootstrap: Sequence[str] = (),
        mdns: bool = False,
        dht: bool = True,
        on_connected: Callable[[PeerID], Awaitable[None]] | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.host = host
        self.bootstrap = parse_bootstrap(bootstrap)
        self.mdns = mdns
        self.dht: KadDHT | None = KadDHT(host, DHTMode.SERVER) if dht else None
        self.on_connected = on_connected
        self.poll_interval = poll_interval
        self.dialer = PeerDialer()
        self._wake = trio.Event()
        self._known: set[PeerID] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        now = trio.current_time()
        for info in self.bootstrap:
            self.dialer.add(info, persistent=True, now=now)
        send, receive = trio.open_memory_channel[PeerInfo](256)
        token = trio.lowlevel.current_trio_token()

        def discovered(info: PeerInfo) -> None:
            # Called from zeroconf's thread; hand the peer to trio without blocking it.
            with contextlib.suppress(
                trio.WouldBlock, trio.RunFinishedError, trio.ClosedResourceError
            ):
                trio.from_thread.run_sync(send.send_nowait, info, trio_token=token)

        if self.mdns:
            peerDiscovery.register_peer_discovered_handler(discovered)
        try:
            async with trio.open_nursery() as nursery:
                if self.dht is not None:
                    await nursery.start(self._run_dht)
                nursery.start_soon(self._take_discovered, receive)
                nursery.start_soon(self._watch_connections, nursery)
                task_status.started()
                await self._dial_loop(nursery)
        finally:
            if self.mdns:
                peerDiscovery.unregister_peer_discovered_handler(discovered)

    async def _run_dht(self, *, task_status: trio.TaskStatus[None]) -> None:
        assert self.dht is not None
        async with background_trio_service(self.dht):
            task_status.started()
            await trio.sleep_forever()

    async def _take_discovered(self, receive: trio.MemoryReceiveChannel[PeerInfo]) -> None:
        async for info in receive:
            if info.peer_id == self.host.get_id():
                continue
            log.info("mDNS found %s", info.peer_id)
            self.dialer.add(info, persistent=False, now=trio.current_time())
            self._wake.set()

    async def _dial_loop(self, nursery: trio.Nursery) -> None:
        while True:
            now = trio.current_time()
            connected = set(self.host.get_connected_peers())
            for info in self.dialer.due(now, connected):
                # Mark as in progress so the next round does not dial it twice.
                self.dialer.peers[info.peer_id].next_try = math.inf
                nursery.start_soon(self._dial, info)
            # Connected peers are not waited for (that would spin); a dropped bootstrap
            # connection is noticed within RECHECK_S.
            wait = min(self.dialer.next_wakeup(now, connected), RECHECK_S)
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _dial(self, info: PeerInfo) -> None:
        try:
            with trio.fail_after(10):
                await self.host.connect(info)
        except Exception as exc:
            log.info("could not dial %s: %s", info.peer_id, exc)
            self.dialer.failed(info.peer_id, trio.current_time())
        else:
            self.dialer.succeeded(info.peer_id, trio.current_time())
        self._wake.set()

    async def _watch_connections(self, nursery: trio.Nursery) -> None:
        """Tell the DHT and the daemon about each new connection (py-libp2p 0.8.1 offers no
        public connection event that is safe to await in, so poll the connected set)."""
        while True:
            current = set(self.host.get_connected_peers())
            for peer in current - self._known:
                if self.dht is not None:
                    try:
                        await self.dht.add_peer(peer)
                    except Exception as exc:  # a peer without the DHT protocol
                        log.debug("DHT did not take %s: %s", peer, exc)
                if self.on_connected is not None:
                    nursery.start_soon(self.on_connected, peer)
            self._known = current
            await trio.sleep(self.poll_interval)

    # -- content routing ---------------------------------------------------------------------
    async def provide(self, cid: str) -> bool:
        if self.dht is None:
            return False
        try:
            with trio.move_on_after(30):
                return await self.dht.provide(cid)
        except Exception as exc:
            log.info("DHT provide of %s failed: %s", cid, exc)
        return False

    async def find_providers(self, cid: str, count: int = 20) -> list[PeerInfo]:
        if self.dht is None:
            return []
        try:
            with trio.move_on_after(10):
                found = await self.dht.find_providers(cid, count)
                return [p for p in found if p.peer_id != self.host.get_id()]
        except Exception as exc:
            log.info("DHT find_providers for %s failed: %s", cid, exc)
        return []
