"""The daemon's network: one libp2p host with discovery, bitswap, gossip and repo sync.

This is the P2P layer's composition: the daemon hands it the block store, the creator identity
and a database path, starts it with ``nursery.start(network.run)`` and gets back the peer id
and addresses once the host listens and every service is running. Nothing here decides policy
for records; valid records found on the network go to the ``on_record`` callback.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import PeerInfo

import dag
from dag import CID, cid_to_str
from provenance import Identity

from .bitswap import Bitswap, FetchResult
from .discovery import Discovery
from .errors import P2PError
from .gossip import DEFAULT_TOPICS, HEADS, Delivered, Gossip, GossipError, make_head_message
from .host import connect, host_addrs, running_host
from .repo import RepoIndex, RepoSync
from .repo_lock import repo_lock

__all__ = ["Network", "NetworkInfo", "PeerRow"]

log = logging.getLogger("artdag.p2p")

PROVIDE_DELAY_S = 3.0

OnRecord = Callable[[CID, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class NetworkInfo:
    peer_id: str
    addrs: list[str]


@dataclass(frozen=True)
class PeerRow:
    peer_id: str
    addrs: list[str]
    score: float
    valid: int
    invalid: int
    invalid_reasons: dict[str, int]
    graylisted: bool
    bad_blocks: int

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Network:
    def __init__(
        self,
        *,
        key_pair: KeyPair,
        store: dag.Blockstore,
        identity: Identity,
        db_path: Path,
        listen: Sequence[str] = ("/ip4/127.0.0.1/tcp/0",),
        bootstrap: Sequence[str] = (),
        mdns: bool = False,
        dht: bool = True,
        max_inflight: int = 32,
        on_record: OnRecord | None = None,
        head_poll_interval: float = 1.0,
    ) -> None:
        self.key_pair = key_pair
        self.store = store
        self.identity = identity
        self.db_path = db_path
        self.listen = list(listen)
        self.bootstrap = list(bootstrap)
        self.mdns = mdns
        self.dht = dht
        self.max_inflight = max_inflight
        self.on_record = on_record
        self.head_poll_interval = head_poll_interval
        self._host: IHost | None = None
        self.bitswap: Bitswap | None = None
        self.gossip: Gossip | None = None
        self.repo: RepoSync | None = None
        self.repo_index: RepoIndex | None = None
        self.discovery: Discovery | None = None
        self._bad_blocks: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        self._published_seq = -1
        self._to_provide: set[CID] = set()
        self._provide_wanted = trio.Event()
        # Recent gossip, newest last: what operators (and bench/p2p.py) look at.
        self.gossip_log: deque[dict[str, Any]] = deque(maxlen=2000)

    # -- lifetime ---------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[NetworkInfo] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with running_host(self.key_pair, self.listen, enable_mdns=self.mdns) as host:
            self._host = host
            self.discovery = Discovery(
                host,
                bootstrap=self.bootstrap,
                mdns=self.mdns,
                dht=self.dht,
                on_connected=self._on_connected,
            )
            self.bitswap = Bitswap(
                host,
                self.store,
                max_inflight=self.max_inflight,
                find_providers=self._find_providers,
                on_bad_block=self._on_bad_block,
            )
            self.gossip = Gossip(
                host, DEFAULT_TOPICS, identity=self.identity, store_message=self._log_delivery
            )
            self.gossip.on_publish = self._log_publish
            self.repo_index = index = RepoIndex(self.db_path)
            self.repo = RepoSync(
                self.store,
                index,
                self.bitswap.get_block,
                self.gossip,
                self.identity,
                self.on_record,
                host=host,
            )
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await nursery.start(self.bitswap.run)
                    await nursery.start(self.gossip.run)
                    await nursery.start(self.repo.run)
                    await nursery.start(self.discovery.run)
                    nursery.start_soon(self._gossip_new_heads)
                    nursery.start_soon(self._provide_queued)
                    task_status.started(self.info())
            finally:
                self._host = None
                index.db.close()

    @property
    def host(self) -> IHost:
        if self._host is None:
            raise P2PError("the network is not running")
        return self._host

    def info(self) -> NetworkInfo:
        return NetworkInfo(self.host.get_id().to_string(), host_addrs(self.host))

    # -- peers ------------------------------------------------------------------------------
    def peers(self) -> list[PeerRow]:
        host = self.host
        stats = self.gossip.peer_stats() if self.gossip else {}
        rows = []
        for pid in host.get_connected_peers():
            key = pid.to_string()
            addrs = self._addrs_of(pid)
            s = stats.get(key)
            rows.append(
                PeerRow(
                    peer_id=key,
                    addrs=addrs,
                    score=float(s.score) if s else 0.0,
                    valid=int(s.valid) if s else 0,
                    invalid=s.invalid_total if s else 0,
                    invalid_reasons=dict(s.invalid) if s else {},
                    graylisted=bool(s.graylisted) if s else False,
                    bad_blocks=self._bad_blocks.get(key, 0),
                )
            )
        return sorted(rows, key=lambda r: r.peer_id)

    def _addrs_of(self, pid: PeerID) -> list[str]:
        """Known addresses of a connected peer; a peer that dialled us may have none in the
        peerstore yet (py-libp2p raises then), so fall back to the connection's remote end."""
        try:
            return [str(a) for a in self.host.get_peerstore().addrs(pid)]
        except Exception:
            pass
        try:
            conns: Any = self.host.get_network().connections.get(pid)
            conn: Any = conns[0] if isinstance(conns, list) and conns else conns
            remote = conn.muxed_conn.secured_conn.get_remote_address() if conn else None
            return [f"/ip4/{remote[0]}/tcp/{remote[1]}"] if remote else []
        except Exception:
            return []

    async def connect(self, addr: str) -> str:
        return (await connect(self.host, addr)).to_string()

    async def _on_connected(self, peer: PeerID) -> None:
        if self.repo is not None:
            try:
                with trio.move_on_after(30):
                    await self.repo.exchange_heads(peer)
            except Exception as exc:
                log.info("heads exchange with %s failed: %s", peer, exc)

    def _on_bad_block(self, peer: PeerID, cid: CID) -> None:
        key = peer.to_string()
        self._bad_blocks[key] = self._bad_blocks.get(key, 0) + 1
        log.warning("peer %s sent bytes that do not match %s; block refused", key, cid_to_str(cid))
        if self.gossip is not None:
            self.gossip.penalize(key, "bad-block")

    async def _find_providers(self, cid: CID) -> list[PeerInfo]:
        if self.discovery is None:
            return []
        return await self.discovery.find_providers(cid_to_str(cid))

    # -- content ----------------------------------------------------------------------------
    async def get(
        self,
        cid: CID,
        *,
        progress: Callable[[int, int], None] | None = None,
        block_timeout: float = 60.0,
    ) -> FetchResult:
        """Fetch the whole DAG under ``cid`` (a UnixFS file or a record graph) into the store;
        ``block_timeout`` bounds the wait for any one block."""
        if self.bitswap is None:
            raise P2PError("the network is not running")
        return await self.bitswap.fetch_dag(cid, progress=progress, timeout=block_timeout)

    async def get_block(self, cid: CID, *, timeout: float = 60.0) -> bytes:
        """One block (from the store, else from peers), checked against its CID; unlike
        :meth:`get`, its links are not followed."""
        if self.bitswap is None:
            raise P2PError("the network is not running")
        return await self.bitswap.get_block(cid, timeout=timeout)

    async def provide(self, cid: CID) -> bool:
        if self.discovery is None:
            return False
        return await self.discovery.provide(cid_to_str(cid))

    def provide_soon(self, *cids: CID) -> None:
        """Announce ``cids`` on the DHT in the background (a provide can take seconds), and
        hand them to peers whose earlier want for them we could not answer."""
        if self.bitswap is not None:
            self.bitswap.notify_new_blocks(list(cids))
        self._to_provide.update(cids)
        self._provide_wanted.set()

    async def _provide_queued(self) -> None:
        """Provide what ``provide_soon`` queued, in batches a few seconds after the adds that
        queued them, one DHT query at a time: DHT traffic then stays out of the way of the
        gossip and bitswap exchanges that follow an add (like Kubo's reprovider queue)."""
        while True:
            await self._provide_wanted.wait()
            await trio.sleep(PROVIDE_DELAY_S)
            self._provide_wanted = trio.Event()
            batch, self._to_provide = self._to_provide, set()
            for cid in batch:
                await self.provide(cid)

    async def publish_record(self, record_cid: CID) -> CID:
        """Append a record we just stored to our creator repo and gossip the new head."""
        if self.repo is None:
            raise P2PError("the network is not running")
        async with repo_lock(self.db_path):
            commit = await self.repo.append_local(record_cid)
        assert self.repo_index is not None
        head = await trio.to_thread.run_sync(self.repo_index.head, self.identity.did)
        self._published_seq = head.seq if head else -1
        return commit

    def _log_publish(self, topic: str, record: dict[str, Any], cid: CID, at: float) -> None:
        self.gossip_log.append(
            {
                "direction": "out",
                "topic": topic,
                "cid": cid_to_str(cid),
                "type": record.get("type"),
                "repo": record.get("repo"),
                "seq": record.get("seq"),
                "at": at,
            }
        )

    async def _log_delivery(self, delivered: Delivered) -> None:
        """Every valid message is kept: stored as a block (unpinned, so a later GC may drop
        it) and noted in the recent-gossip log."""
        at = time.time()
        record = delivered.record
        self.gossip_log.append(
            {
                "direction": "in",
                "topic": delivered.topic,
                "cid": cid_to_str(delivered.cid),
                "from": delivered.from_peer,
                "via": delivered.received_from,
                "type": record.get("type"),
                "repo": record.get("repo"),
                "seq": record.get("seq"),
                "at": at,
            }
        )
        await self.store.put(dag.Block.checked(delivered.cid, delivered.raw))

    async def _gossip_new_heads(self) -> None:
        """Gossip our head whenever it moves without us: records appended by ``artdag add``
        run while the daemon was down or beside it (another process), and once at start so
        peers that missed the last one hear it. A fresh head message is signed each time,
        since gossip refuses stale ones."""
        assert self.gossip is not None and self.repo_index is not None
        while True:
            head = await trio.to_thread.run_sync(self.repo_index.head, self.identity.did)
            if head is not None and head.seq != self._published_seq:
                message = make_head_message(self.identity, head.seq, head.head)
                try:
                    await self.gossip.publish(HEADS.name, message)
                    self._published_seq = head.seq
                except GossipError as exc:
                    log.info("head %s not gossiped yet: %s", head.seq, exc)
            await trio.sleep(self.head_poll_interval)
