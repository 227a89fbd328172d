"""Creator repo sync between real py-libp2p hosts: gossiped heads, heads exchange, refusals.

Blocks move through ``fetch_block``, which here reads the serving node's blockstore directly
(bitswap is built in p2p/bitswap in parallel; RepoSync only needs the callable). Everything
else is real: hosts over loopback, gossip, the /artdag/heads/1.0.0 stream protocol, FlatFs
stores and SQLite indexes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.abc import IHost
from multiformats import CID

from dag import Block, Blockstore, FlatFsBlockstore, decode_dagcbor, encode_dagcbor, record_block
from p2p.gossip import HEADS, Gossip, make_head_message
from p2p.host import connect, host_addrs, running_host
from p2p.repo import ChainInvalid, ForkDetected, RepoIndex, RepoSync, append
from provenance import Identity, make_asset_record, sign_record


@dataclass
class Peer:
    identity: Identity
    store: FlatFsBlockstore
    db_path: Path
    source: dict[str, Blockstore] = field(default_factory=dict)  # where fetch_block reads
    records: list[tuple[CID, dict]] = field(default_factory=list)
    arrived: trio.Event = field(default_factory=trio.Event)
    want: int = 0
    tamper: bool = False

    async def fetch_block(self, cid: CID) -> bytes:
        for store in self.source.values():
            if await store.has(cid):
                data = await store.get(cid)
                return data + b"!" if self.tamper else data
        raise LookupError(f"nobody has {cid}")

    async def on_record(self, cid: CID, record: dict[str, Any]) -> None:
        self.records.append((cid, record))
        if len(self.records) >= self.want:
            self.arrived.set()

    def expect(self, total: int) -> None:
        self.want, self.arrived = total, trio.Event()
        if len(self.records) >= total:
            self.arrived.set()


def make_peer(tmp: Path, name: str) -> Peer:
    return Peer(Identity.generate(), FlatFsBlockstore(tmp / name), tmp / f"{name}.db")


@asynccontextmanager
async def online(peer: Peer, *, gossip: bool = True) -> AsyncIterator[tuple[IHost, RepoSync]]:
    async with AsyncExitStack() as stack:
        host = await stack.enter_async_context(running_host())
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        topics = Gossip(host, [HEADS], identity=peer.identity) if gossip else None
        if topics is not None:
            await nursery.start(topics.run)
        sync = RepoSync(
            peer.store,
            peer.db_path,
            peer.fetch_block,
            topics,
            peer.identity,
            peer.on_record,
            host=host,
        )
        await nursery.start(sync.run)
        yield host, sync


async def link(a: IHost, sa: RepoSync, b: IHost, sb: RepoSync) -> None:
    await connect(a, host_addrs(b)[0])
    assert sa.gossip is not None and sb.gossip is not None
    await sa.gossip.wait_for_mesh(b.get_id(), HEADS.name)
    await sb.gossip.wait_for_mesh(a.get_id(), HEADS.name)


async def add_record(peer: Peer, sync: RepoSync, n: int) -> CID:
    record = sign_record(
        make_asset_record(root=Block.encode(b"media %d" % n).cid, name=f"clip{n}.mp4", size=7),
        peer.identity,
    )
    block = record_block(record)
    await peer.store.put(block)
    await sync.append_local(block.cid)
    return block.cid


async def test_gossiped_heads_sync_and_an_offline_peer_catches_up(tmp_path: Path) -> None:
    alice, bob = make_peer(tmp_path, "alice"), make_peer(tmp_path, "bob")
    bob.source["alice"] = alice.store
    async with online(alice) as (ha, sa):
        async with online(bob) as (hb, sb):
            await link(ha, sa, hb, sb)
            bob.expect(3)
            added = [await add_record(alice, sa, n) for n in range(3)]
            with trio.fail_after(20):
                await bob.arrived.wait()
                async with sb._locks[alice.identity.did]:  # the head moves after on_record
                    pass
            assert [cid for cid, _ in bob.records] == added
            assert sb.index.head(alice.identity.did).seq == 2
        # bob is offline; alice keeps writing
        more = [await add_record(alice, sa, n) for n in range(3, 5)]
        assert sa.index.head(alice.identity.did).seq == 4
        # new host, same store and index; without gossip, so that gossip's own repair (IHAVE of
        # recent messages to a new mesh peer) cannot deliver the heads before the exchange does
        async with online(bob, gossip=False) as (hb2, sb2):
            assert sb2.index.head(alice.identity.did).seq == 2
            await connect(hb2, host_addrs(ha)[0])
            with trio.fail_after(20):
                assert await sb2.exchange_heads(ha.get_id()) == 2
            assert [cid for cid, _ in bob.records] == added + more
            rows = sb2.index.records(alice.identity.did)
            assert [(r["seq"], r["type"], r["signer"]) for r in rows] == [
                (n, "asset", alice.identity.did) for n in range(5)
            ]
            # asking again brings nothing new, and alice learns nothing from bob's reply
            assert await sb2.exchange_heads(ha.get_id()) == 0
            assert await sa.exchange_heads(hb2.get_id()) == 0


async def test_forks_tampered_blocks_and_foreign_commits_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="artdag.p2p.repo")
    alice, bob = make_peer(tmp_path, "alice"), make_peer(tmp_path, "bob")
    bob.source["alice"] = alice.store
    index = RepoIndex(tmp_path / "alice.db")
    async with online(alice) as (_, sa):
        sa.index = index
        await add_record(alice, sa, 0)
        first = await add_record(alice, sa, 1)
    sync = RepoSync(bob.store, bob.db_path, bob.fetch_block, None, bob.identity, bob.on_record)
    head_row = index.head(alice.identity.did)
    assert head_row is not None and head_row.message is not None
    message = decode_dagcbor(head_row.message)

    # a tampered block from the serving peer is refused, nothing is indexed
    bob.tamper = True
    with pytest.raises(ChainInvalid, match="tampered block"):
        await sync.handle_head(message)
    assert sync.index.head(alice.identity.did) is None
    bob.tamper = False
    assert await sync.handle_head(message) == 2
    assert [cid for cid, _ in bob.records][-1] == first

    # alice equivocates: another commit at seq 1, validly signed
    c0 = decode_dagcbor(await alice.store.get(index.commit_at(alice.identity.did, 0)))
    other_record = record_block(sign_record({"type": "x-note"}, alice.identity))
    fork = append(alice.identity, c0, other_record.cid)
    fork_block = record_block(fork)
    await alice.store.put(fork_block)
    with pytest.raises(ForkDetected, match="fork at seq 1"):
        await sync.handle_head(make_head_message(alice.identity, 1, fork_block.cid))
    # ... and builds on it: refused where it leaves the chain we hold
    grown = record_block(append(alice.identity, fork, other_record.cid))
    await alice.store.put(grown)
    with pytest.raises(ForkDetected):
        await sync.handle_head(make_head_message(alice.identity, 2, grown.cid))

    # a commit signed by mallory, announced as alice's head by alice
    mallory = Identity.generate()
    c1 = decode_dagcbor(await alice.store.get(index.commit_at(alice.identity.did, 1)))
    unsigned = {
        k: v for k, v in append(alice.identity, c1, first).items() if k not in ("sig", "signer")
    }
    foreign = record_block(sign_record(unsigned, mallory))
    await alice.store.put(foreign)
    with pytest.raises(ChainInvalid, match="signed by " + mallory.did):
        await sync.handle_head(make_head_message(alice.identity, 2, foreign.cid))
    # a head for alice's repo signed by mallory never gets that far
    with pytest.raises(ChainInvalid, match="signed by"):
        await sync.handle_head(
            {**make_head_message(mallory, 2, foreign.cid), "repo": alice.identity.did}
        )

    assert sync.index.head(alice.identity.did).seq == 1  # still the chain we accepted
    reasons = [r.getMessage() for r in caplog.records if r.name == "artdag.p2p.repo"]
    assert any("tampered block" in m for m in reasons)
    assert sum("fork at seq 1" in m for m in reasons) == 2
    assert any(mallory.did in m for m in reasons)
    assert encode_dagcbor(message)  # the stored head message round-trips


async def test_small_commits_travel_inline_in_the_head_message(tmp_path: Path) -> None:
    """A follower that can fetch nothing still syncs a new commit: the head message carries
    the commit and its record, each used only after its bytes hash to the CID asked for."""
    alice, bob = make_peer(tmp_path, "alice"), make_peer(tmp_path, "bob")
    author = RepoSync(alice.store, alice.db_path, alice.fetch_block, None, alice.identity)
    record = record_block(
        sign_record(
            make_asset_record(root=Block.encode(b"x", "raw").cid, name="a.bin", size=1),
            alice.identity,
        )
    )
    await alice.store.put(record)
    commit_cid = await author.append_local(record.cid)
    head = RepoIndex(alice.db_path).head(alice.identity.did)
    assert head is not None and head.message is not None
    message = decode_dagcbor(head.message)
    assert [Block.encode(b, "dag-cbor").cid for b in message["blocks"]] == [commit_cid, record.cid]

    bob.expect(1)  # bob's fetch_block has no source: every fetch would fail
    follower = RepoSync(bob.store, bob.db_path, bob.fetch_block, None, bob.identity, bob.on_record)
    assert await follower.handle_head(message) == 1
    assert bob.records[0][0] == record.cid

    # a forged inline block is never used: its bytes name another CID, so the fetch is tried
    carol = make_peer(tmp_path, "carol")
    junk = encode_dagcbor({"not": "the commit"})
    wrong = make_head_message(alice.identity, message["seq"], commit_cid, [junk])
    quiet = RepoSync(carol.store, carol.db_path, carol.fetch_block, None, carol.identity)
    with pytest.raises(LookupError):
        await quiet.handle_head(wrong)
    assert not await carol.store.has(commit_cid)
