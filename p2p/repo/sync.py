"""``RepoSync``: extend our creator repo, follow other creators' repos, exchange heads.

- :meth:`RepoSync.append_local` appends a record to our repo, stores the commit block, moves
  our head and gossips a signed ``head`` message.
- :meth:`RepoSync.handle_head` takes a head message (from gossip or a heads exchange), fetches
  the commits we lack from the new head back to the head we hold, verifies them
  (:mod:`p2p.repo.chain`), fetches and verifies each commit's record, indexes it and hands it to
  ``on_record``. Forks and tampered chains are refused with a logged reason (logger
  ``artdag.p2p.repo``); heads of one repo are handled one at a time.
- :meth:`RepoSync.exchange_heads` asks a peer for its heads over ``/artdag/heads/1.0.0`` and
  handles the newer ones, so a node that was offline catches up when it reconnects;
  :meth:`RepoSync.run` serves that protocol and follows the heads topic.

Every block comes from our store or through ``fetch_block`` and is checked against its CID
here as well before it is stored, so a peer serving wrong bytes cannot get them in.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlite_utils
import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID
from multiformats import CID

from dag import Block, BlockCorrupt, Blockstore, CodecError, decode_dagcbor, encode_dagcbor
from provenance import Identity, ProvenanceError, verify_signed

from ..gossip import HEADS, Gossip, GossipError, make_head_message
from .chain import (
    ChainInvalid,
    RepoError,
    append,
    check_known_head,
    verify_commit,
    verify_segment,
)
from .heads_protocol import HEADS_PROTOCOL, decode_reply, decode_request, read_frame, write_frame
from .index import RepoIndex

__all__ = ["FetchBlock", "OnRecord", "RepoSync"]

logger = logging.getLogger("artdag.p2p.repo")

FetchBlock = Callable[[CID], Awaitable[bytes]]
OnRecord = Callable[[CID, dict[str, Any]], Awaitable[None]]


INLINE_MAX_BYTES = 1200  # the heads topic takes 2 KiB messages; the envelope needs ~400
MAX_HINTS = 256


class RepoSync:
    def __init__(
        self,
        store: Blockstore,
        db: sqlite_utils.Database | str | Path | RepoIndex,
        fetch_block: FetchBlock,
        gossip: Gossip | None,
        identity: Identity,
        on_record: OnRecord | None = None,
        *,
        host: IHost | None = None,
        block_timeout: float = 30.0,
        exchange_timeout: float = 10.0,
        max_concurrent_heads: int = 8,
    ) -> None:
        self.store = store
        self.index = db if isinstance(db, RepoIndex) else RepoIndex(db)
        self.fetch_block = fetch_block
        self.gossip = gossip
        self.identity = identity
        self.on_record = on_record
        self.host = host if host is not None else (gossip.host if gossip is not None else None)
        self.block_timeout = block_timeout
        self.exchange_timeout = exchange_timeout
        self._limiter = trio.CapacityLimiter(max_concurrent_heads)
        self._locks: defaultdict[str, trio.Lock] = defaultdict(trio.Lock)
        self._hints: dict[CID, bytes] = {}  # blocks that arrived inline in head messages

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the heads exchange and follow the heads topic until cancelled."""
        if self.host is not None:
            self.host.set_stream_handler(TProtocol(HEADS_PROTOCOL), self._serve_heads)
        heads = self.gossip.subscribe(HEADS.name) if self.gossip is not None else None
        async with trio.open_nursery() as nursery:
            task_status.started()
            if heads is None:
                await trio.sleep_forever()
            else:
                async with heads:
                    async for delivered in heads:
                        nursery.start_soon(self._handle_quietly, delivered.record)

    # -- our repo ---------------------------------------------------------------------------
    async def append_local(self, record: CID) -> CID:
        """Append ``record`` (a block in our store) to our repo; gossip the new head."""
        repo = self.identity.did
        async with self._locks[repo]:
            head = await trio.to_thread.run_sync(self.index.head, repo)
            previous = None if head is None else decode_dagcbor(await self.store.get(head.head))
            commit = append(self.identity, previous, record)
            block = Block.encode(encode_dagcbor(commit), "dag-cbor")
            await self.store.put(block)
            await self.store.flush()
            content = await self._record(record)
            record_bytes = await self.store.get(record)
            inline = [block.data, record_bytes]
            if sum(map(len, inline)) > INLINE_MAX_BYTES:
                inline = [block.data] if len(block.data) <= INLINE_MAX_BYTES else []
            message = make_head_message(self.identity, commit["seq"], block.cid, inline)
            await trio.to_thread.run_sync(self.index.add_commit, block.cid, commit, content)
            await trio.to_thread.run_sync(
                self.index.set_head, repo, commit["seq"], block.cid, encode_dagcbor(message)
            )
        if self.gossip is not None:
            try:
                await self.gossip.publish(HEADS.name, message)
            except GossipError as exc:
                logger.warning("head %s of our repo not gossiped: %s", commit["seq"], exc)
        return block.cid

    # -- other repos ------------------------------------------------------------------------
    async def handle_head(self, message: dict[str, Any]) -> int:
        """Sync the repo a signed head message points at; return how many records were new.

        Raises ChainInvalid (ForkDetected for a fork) after logging why the head was refused.
        """
        try:
            repo, seq, head = _check_head_message(message)
        except ChainInvalid as exc:
            logger.warning("refused head message: %s", exc)
            raise
        if repo == self.identity.did:
            return 0  # nobody else writes our repo; our index is the truth
        for data in message.get("blocks") or ():
            # Keyed by the CID their bytes hash to, so a hint can only ever be the block its
            # CID names; used by _block instead of a bitswap fetch, stored only when used.
            self._hints[Block.encode(data, "dag-cbor").cid] = data
            while len(self._hints) > MAX_HINTS:
                self._hints.pop(next(iter(self._hints)))
        async with self._locks[repo]:
            try:
                return await self._sync(repo, seq, head, message)
            except ChainInvalid as exc:
                logger.warning("refused head %s of repo %s: %s", seq, repo, exc)
                raise

    async def _sync(self, repo: str, seq: int, head: CID, message: dict[str, Any]) -> int:
        known = await trio.to_thread.run_sync(self.index.chain_head, repo)
        if known is not None and seq <= known.seq:

            def known_at(s: int) -> CID | None:
                return known.cid if s == known.seq else self.index.commit_at(repo, s)

            await trio.to_thread.run_sync(check_known_head, repo, seq, head, known_at)
            return 0
        segment: list[tuple[CID, dict[str, Any]]] = []
        cid, expected_seq = head, seq
        floor = -1 if known is None else known.seq
        while expected_seq > floor:
            commit = await self._decoded(cid, "commit")
            verify_commit(commit, repo)
            if commit["seq"] != expected_seq:
                raise ChainInvalid(
                    f"repo {repo}: commit {cid.encode('base32')} has seq {commit['seq']}, "
                    f"expected {expected_seq}"
                )
            segment.append((cid, commit))
            if expected_seq == 0:
                break
            cid, expected_seq = commit["prev"], expected_seq - 1
        ordered = verify_segment(repo, segment, known)
        records = [(c, commit, await self._record(commit["record"])) for c, commit in ordered]
        for commit_cid, commit, record in records:
            await trio.to_thread.run_sync(self.index.add_commit, commit_cid, commit, record)
            if self.on_record is not None:
                await self.on_record(commit["record"], record)
        await trio.to_thread.run_sync(self.index.set_head, repo, seq, head, encode_dagcbor(message))
        logger.info("repo %s now at seq %s (%s new records)", repo, seq, len(records))
        return len(records)

    async def _handle_quietly(self, message: dict[str, Any]) -> None:
        async with self._limiter:
            try:
                await self.handle_head(message)
            except RepoError:
                pass  # already logged with its reason
            except Exception:
                logger.exception("syncing head %r failed", message.get("head"))

    # -- heads exchange ---------------------------------------------------------------------
    async def exchange_heads(self, peer: PeerID) -> int:
        """Ask ``peer`` for its newer heads and sync them; return how many records were new."""
        if self.host is None:
            raise RepoError("heads exchange needs a host")
        ours = await trio.to_thread.run_sync(self.index.heads)
        request = {"heads": [{"repo": row.repo, "seq": row.seq} for row in ours]}
        with trio.fail_after(self.exchange_timeout):
            stream = await self.host.new_stream(peer, [TProtocol(HEADS_PROTOCOL)])
            try:
                await write_frame(stream, request)
                reply = decode_reply(await read_frame(stream))
            finally:
                await stream.close()
        new = 0
        for message in reply:
            try:
                new += await self.handle_head(message)
            except RepoError:  # logged; one bad repo does not stop the others
                continue
        return new

    async def _serve_heads(self, stream: INetStream) -> None:
        try:
            with trio.fail_after(self.exchange_timeout):
                known = decode_request(await read_frame(stream))
                rows = await trio.to_thread.run_sync(self.index.heads)
                reply = [
                    decode_dagcbor(row.message)
                    for row in rows
                    if row.message is not None and known.get(row.repo, -1) < row.seq
                ]
                await write_frame(stream, {"heads": reply})
        except (RepoError, trio.TooSlowError) as exc:
            logger.info("heads exchange with %s failed: %s", stream.muxed_conn.peer_id, exc)
        except Exception as exc:  # the peer went away mid-exchange
            logger.debug("heads exchange with %s ended: %r", stream.muxed_conn.peer_id, exc)
        finally:
            await stream.close()

    # -- blocks -----------------------------------------------------------------------------
    async def _block(self, cid: CID) -> bytes:
        if await self.store.has(cid):
            return await self.store.get(cid)
        hinted = self._hints.pop(cid, None)
        if hinted is not None:
            data = hinted
        else:
            with trio.fail_after(self.block_timeout):
                data = await self.fetch_block(cid)
        try:
            block = Block.checked(cid, data)
        except BlockCorrupt as exc:
            raise ChainInvalid(f"tampered block: {exc}") from None
        await self.store.put(block)
        return data

    async def _decoded(self, cid: CID, what: str) -> Any:
        if cid.codec.name != "dag-cbor":
            raise ChainInvalid(f"{what} {cid.encode('base32')} is {cid.codec.name}, not dag-cbor")
        try:
            return decode_dagcbor(await self._block(cid))
        except CodecError as exc:
            raise ChainInvalid(f"{what} {cid.encode('base32')}: {exc}") from None

    async def _record(self, cid: CID) -> dict[str, Any]:
        """A repo's record: a signed DAG-CBOR record whose signature holds."""
        record = await self._decoded(cid, "record")
        try:
            verify_signed(record)
        except ProvenanceError as exc:
            raise ChainInvalid(f"record {cid.encode('base32')}: {exc}") from None
        return record


def _check_head_message(message: Any) -> tuple[str, int, CID]:
    try:
        verify_signed(message)
    except ProvenanceError as exc:
        raise ChainInvalid(f"head message: {exc}") from None
    if message["type"] != "head":
        raise ChainInvalid(f"expected a head message, got a {message['type']!r} record")
    if message["repo"] != message["signer"]:
        raise ChainInvalid(f"head of repo {message['repo']} signed by {message['signer']}")
    return message["repo"], message["seq"], message["head"]
