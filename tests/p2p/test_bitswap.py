"""artdag's bitswap: the wire codec, the two sans-I/O state machines, and real py-libp2p hosts
(Noise + Yamux over 127.0.0.1, each with its own FlatFsBlockstore) fetching from each other.

The misbehaving peers below are real hosts speaking bitswap through our codec: one answers
wants with bytes that do not hash to the CID, one sends garbage instead of a message.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from libp2p.abc import IHost, INetStream
from libp2p.bitswap.pb import bitswap_pb2
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import PeerInfo

import dag
from dag import CID, Block, FlatFsBlockstore, ImportParams, import_file, read_file, record_block
from p2p.bitswap import (
    PROTOCOL_V100,
    PROTOCOL_V110,
    PROTOCOL_V120,
    Bitswap,
    BlockPrefix,
    BlockUnavailable,
    Message,
    MessageError,
    Presence,
    PresenceType,
    ServerLedger,
    Unwanted,
    WantEntry,
    WantTracker,
    WantType,
    decode_message,
    encode_message,
)
from p2p.bitswap.framing import FrameReader, frame
from p2p.host import connect, host_addrs, running_host
from tests.harness.bitswap_peers import lying_peer


def raw_block(data: bytes) -> Block:
    return Block.encode(data, "raw")


# -- wire codec -----------------------------------------------------------------------------


def test_message_round_trip_and_matches_generated_protobuf():
    a, b = raw_block(b"a"), Block.encode(b"\x0a\x00", "dag-pb", version=0)
    msg = Message(
        entries=[
            WantEntry(a.cid, WantType.HAVE, priority=7, send_dont_have=True),
            WantEntry(b.cid, WantType.BLOCK, priority=(1 << 31) - 1),
            WantEntry(a.cid, cancel=True),
        ],
        full=True,
        presences=[Presence(b.cid, PresenceType.DONT_HAVE), Presence(a.cid, PresenceType.HAVE)],
    )
    wire = encode_message(msg, PROTOCOL_V120, [a, b])
    back = decode_message(wire)
    assert back.entries == msg.entries and back.full and back.presences == msg.presences
    assert [p.prefix.block_for(p.data) for p in back.blocks] == [a, b]

    # py-libp2p's generated classes (protoc output) read our bytes the same way ...
    theirs = bitswap_pb2.Message()
    theirs.ParseFromString(wire)
    assert [e.wantType for e in theirs.wantlist.entries] == [1, 0, 0]
    assert [e.sendDontHave for e in theirs.wantlist.entries] == [True, False, False]
    assert theirs.wantlist.entries[1].priority == (1 << 31) - 1
    assert [p.type for p in theirs.blockPresences] == [1, 0]
    assert bytes(theirs.payload[1].prefix) == b"\x00\x70\x12\x20"  # CIDv0 prefix as Kubo sends
    # ... and we read theirs, including a negative int32 priority (ten-byte varint).
    theirs.wantlist.entries[0].priority = -5
    assert decode_message(theirs.SerializeToString()).entries[0].priority == -5


def test_legacy_protocols_get_bare_blocks_and_no_presences():
    a = raw_block(b"legacy")
    msg = Message(
        entries=[WantEntry(a.cid, WantType.HAVE, send_dont_have=True)],
        presences=[Presence(a.cid, PresenceType.HAVE)],
    )
    back = decode_message(encode_message(msg, PROTOCOL_V100, [a]))
    assert back.presences == []
    assert back.entries[0].want_type == WantType.BLOCK and not back.entries[0].send_dont_have
    assert back.blocks[0].data == b"legacy"
    assert back.blocks[0].prefix == BlockPrefix(0, 0x70, 0x12, 32)  # 1.0.0 implies CIDv0


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        (b"\x0a\x05\x0a\x03", "runs past the end"),
        (b"\x0a\x05\x0a\x03\x0a\x01\x07", "invalid CID"),
        (b"\x0b", "wire type"),
        (b"\x1a\x03\x0a\x01\x07", "varint"),
        (b"\x22\x02\x10\x01", "without a CID"),
        (b"\x80", "ends inside a varint"),
    ],
)
def test_malformed_messages_raise_one_error(wire, problem):
    with pytest.raises(MessageError, match=problem):
        decode_message(wire)


def test_prefix_hashes_bytes_and_refuses_unknown_codecs():
    block = Block.encode(b"x" * 100, "dag-cbor", hashfun="sha3-256")
    assert BlockPrefix.of(block.cid).block_for(block.data) == block
    assert BlockPrefix.of(block.cid).block_for(b"other").cid != block.cid
    with pytest.raises(MessageError, match="unknown codec"):
        BlockPrefix(1, 0x7FFFF0, 0x12, 32).block_for(b"x")


# -- the serving ledger (sans-I/O) ---------------------------------------------------------


def test_ledger_serves_peers_round_robin_and_forgets_cancelled_wants():
    ledger = ServerLedger()
    greedy = [raw_block(bytes([i])) for i in range(100)]
    ledger.receive("greedy", [WantEntry(b.cid) for b in greedy])
    ledger.receive("modest", [WantEntry(greedy[0].cid, WantType.HAVE)])
    order = []
    while (batch := ledger.take(10)) is not None:
        peer, tasks = batch
        order.append((peer, len(tasks)))
        for task in tasks:
            ledger.served(peer, task, answered=True)
        ledger.finished(peer)
    assert order[:2] == [("greedy", 10), ("modest", 1)]  # one greedy batch, then its turn
    assert sum(n for p, n in order if p == "greedy") == 100
    assert ledger.wantlist("greedy") == [] and ledger.wantlist("modest") == []

    ledger.receive("p", [WantEntry(b.cid) for b in greedy[:3]])
    ledger.receive("p", [WantEntry(greedy[1].cid, cancel=True)])
    ledger.receive("p", [WantEntry(greedy[2].cid, WantType.HAVE)])  # never downgrades
    peer, tasks = ledger.take(10)
    assert [t.entry.cid for t in tasks] == [greedy[0].cid, greedy[2].cid]
    assert all(t.entry.want_type == WantType.BLOCK for t in tasks)
    ledger.receive("p", [WantEntry(greedy[5].cid)], full=True)  # replaces the wantlist
    assert [e.cid for e in ledger.wantlist("p")] == [greedy[5].cid]


def test_ledger_gives_a_slow_peer_at_most_two_batches_at_once():
    ledger = ServerLedger(max_batches_per_peer=2)
    blocks = [raw_block(bytes([i])) for i in range(10)]
    ledger.receive("slow", [WantEntry(b.cid) for b in blocks])
    assert ledger.take(2) is not None and ledger.take(2) is not None
    assert ledger.take(2) is None  # both batches still being written to "slow"
    ledger.receive("other", [WantEntry(blocks[0].cid)])
    assert ledger.take(2)[0] == "other"  # a free worker serves someone else meanwhile
    assert ledger.finished("slow")
    assert ledger.take(2)[0] == "slow"


def test_ledger_is_bounded_and_requeues_a_want_when_the_block_arrives():
    ledger = ServerLedger(max_wants_per_peer=5)
    blocks = [raw_block(bytes([i])) for i in range(8)]
    ledger.receive("p", [WantEntry(b.cid, send_dont_have=True) for b in blocks])
    assert len(ledger.wantlist("p")) == 5 and ledger.dropped_wants == 3
    peer, tasks = ledger.take(64)
    for task in tasks:
        ledger.served(peer, task, answered=False)  # we did not have them: DONT_HAVE
    assert ledger.take(64) is None and len(ledger.wantlist("p")) == 5
    assert ledger.block_added(bytes(blocks[3].cid.digest))
    peer, tasks = ledger.take(64)
    assert [t.entry.cid for t in tasks] == [blocks[3].cid]
    ledger.peer_gone("p")
    assert ledger.wantlist("p") == [] and not ledger.has_work


# -- the want tracker (sans-I/O) -----------------------------------------------------------


def sent(sends):
    return sorted((s.peer, s.entry.want_type.name, s.entry.cancel) for s in sends)


def test_tracker_asks_everyone_then_the_peer_that_has_it():
    t = WantTracker(block_timeout=5)
    cid = raw_block(b"wanted").cid
    key = bytes(cid.digest)
    peers = ["a", "b", "c"]
    assert sent(t.want(cid, 0, peers)) == [
        ("a", "HAVE", False),
        ("b", "HAVE", False),
        ("c", "HAVE", False),
    ]
    assert t.dont_have("a", key, 0.1, peers) == []
    assert sent(t.have("b", key, 0.2, peers)) == [("b", "BLOCK", False)]
    assert t.have("c", key, 0.3, peers) == []  # one want-block at a time
    # b goes silent: after the timeout c (which said HAVE) is asked.
    assert sent(t.tick(5.3, peers)) == [("c", "BLOCK", False)]
    got, cancels = t.block_received("c", key)
    assert got == cid and sent(cancels) == [("b", "BLOCK", True)]
    # The next block goes straight to c, the peer that delivered.
    other = raw_block(b"next").cid
    assert sent(t.want(other, 6, peers)) == [("c", "BLOCK", False)]


def test_tracker_charges_wrong_bytes_to_the_peer_asked_and_asks_elsewhere():
    t = WantTracker()
    cid = raw_block(b"real").cid
    key = bytes(cid.digest)
    t.want(cid, 0, ["evil"])
    t.have("evil", key, 0, ["evil"])
    fake = raw_block(b"fake")
    kind, meant, sends = t.unwanted_block(
        "evil", bytes(fake.cid.digest), BlockPrefix.of(fake.cid), 1, ["evil", "good"]
    )
    assert kind is Unwanted.BAD and meant == cid
    assert sent(sends) == [("good", "HAVE", False)]
    # The bad peer never becomes the preferred source; a late copy of a finished want is a dup.
    t.have("good", key, 2, ["evil", "good"])
    assert t.block_received("good", key)[0] == cid
    kind, _, _ = t.unwanted_block("x", key, BlockPrefix.of(cid), 3, ["x"])
    assert kind is Unwanted.DUPLICATE
    stray = raw_block(b"never asked")
    kind, _, _ = t.unwanted_block("x", bytes(stray.cid.digest), BlockPrefix.of(stray.cid), 3, [])
    assert kind is Unwanted.UNSOLICITED


def test_tracker_reroutes_when_a_peer_leaves_and_cancels_when_given_up():
    t = WantTracker()
    cid = raw_block(b"x").cid
    key = bytes(cid.digest)
    t.want(cid, 0, ["a"])
    t.have("a", key, 0, ["a"])
    assert sent(t.peer_gone("a", 1, ["b"])) == [("b", "HAVE", False)]
    assert sent(t.peer_connected("c", 1, ["b", "c"])) == [("c", "HAVE", False)]
    assert sent(t.give_up(cid)) == [("b", "BLOCK", True), ("c", "BLOCK", True)]
    assert key not in t


# -- framing -------------------------------------------------------------------------------


class _Chunks:
    """A stand-in for a libp2p stream that returns the given pieces, then EOF."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def read(self, n: int | None = None) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if n is not None and len(piece) > n:
            piece, rest = piece[:n], piece[n:]
            self.pieces.insert(0, rest)
        return piece


async def test_frame_reader_reassembles_and_limits_frames():
    big = random.Random(1).randbytes(700_000)  # larger than one read: the other code path
    wire = frame(b"hello") + frame(b"x" * 300) + frame(big) + frame(b"end")
    cuts = [0, 1, 4, 200, 5000, 400_000, len(wire) - 2, len(wire)]
    pieces = [wire[a:b] for a, b in itertools.pairwise(cuts)]
    reader = FrameReader(_Chunks(pieces), 1 << 20)  # type: ignore[arg-type]
    assert await reader.next() == b"hello"
    assert await reader.next() == b"x" * 300
    assert await reader.next() == big
    assert await reader.next() == b"end"
    assert await reader.next() is None
    with pytest.raises(MessageError, match="exceeds"):
        await FrameReader(_Chunks([frame(b"y" * 2000)]), 1000).next()  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="inside a message"):
        await FrameReader(_Chunks([frame(b"z" * 50)[:20]]), 1000).next()  # type: ignore[arg-type]


# -- real hosts ----------------------------------------------------------------------------


@dataclass
class Node:
    host: IHost
    store: FlatFsBlockstore
    bitswap: Bitswap
    bad: list[tuple[PeerID, CID]]

    @property
    def addr(self) -> str:
        return host_addrs(self.host)[0]

    @property
    def key(self) -> str:
        return self.host.get_id().to_string()


@asynccontextmanager
async def bitswap_node(path: Path, **options: object) -> AsyncIterator[Node]:
    store = FlatFsBlockstore(path)
    bad: list[tuple[PeerID, CID]] = []
    try:
        async with running_host() as host, trio.open_nursery() as nursery:
            bitswap = Bitswap(host, store, on_bad_block=lambda p, c: bad.append((p, c)), **options)  # type: ignore[arg-type]
            await nursery.start(bitswap.run)
            yield Node(host, store, bitswap, bad)
            nursery.cancel_scope.cancel()
    finally:
        await store.aclose()


async def all_present(store: FlatFsBlockstore, root: CID) -> int:
    return len([cid async for cid, _ in dag.walk_dag(store, [root])])


@pytest.mark.slow
async def test_fetch_multilevel_unixfs_file_and_dagcbor_graph(tmp_path):
    data = random.Random(3).randbytes(300_000)
    source = tmp_path / "file.bin"
    source.write_bytes(data)
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(bitswap_node(tmp_path / "alice"))
        bob = await stack.enter_async_context(bitswap_node(tmp_path / "bob"))
        imported = await import_file(alice.store, source, ImportParams(chunk_size=1024))
        # 293 leaves > 174 links per node: a root over two inner nodes over the leaves.
        root_links = dag.links_of(imported.cid, await alice.store.get(imported.cid))
        assert len(root_links) == 2

        # A DAG-CBOR graph: records linking records (and a raw block), shared children once.
        leaf = raw_block(b"shared payload")
        records = [record_block({"type": "asset", "n": i, "payload": leaf.cid}) for i in range(5)]
        index = record_block(
            {"type": "index", "items": [r.cid for r in records], "again": leaf.cid}
        )
        await alice.store.put_many([leaf, *records, index])

        await connect(bob.host, alice.addr)
        seen: list[tuple[int, int]] = []
        with trio.fail_after(60):
            result = await bob.bitswap.fetch_dag(
                imported.cid, progress=lambda d, k: seen.append((d, k))
            )
            graph = await bob.bitswap.fetch_dag(index.cid)

        assert result.blocks == imported.blocks == result.fetched and result.already_had == 0
        assert b"".join([p async for p in read_file(bob.store, imported.cid)]) == data
        assert await all_present(bob.store, imported.cid) == imported.blocks
        assert seen[-1] == (imported.blocks, imported.blocks)
        assert graph.blocks == 7 and graph.bytes == sum(
            len(b.data) for b in [leaf, *records, index]
        )
        assert await all_present(bob.store, index.cid) == 7
        assert await bob.store.pins() == []  # the caller decides what to pin

        stats = alice.bitswap.stats
        assert stats.blocks_sent == imported.blocks + 7 == bob.bitswap.stats.blocks_received
        assert stats.peers[bob.key].bytes_sent == bob.bitswap.stats.bytes_received
        # Fetching again is all local.
        again = await bob.bitswap.fetch_dag(imported.cid)
        assert again.already_had == imported.blocks and again.fetched == 0


async def test_unavailable_block_raises_naming_cid_and_peers(tmp_path):
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(bitswap_node(tmp_path / "alice"))
        bob = await stack.enter_async_context(bitswap_node(tmp_path / "bob"))
        await connect(bob.host, alice.addr)
        missing = raw_block(b"nobody has this").cid
        with pytest.raises(BlockUnavailable) as err:
            await bob.bitswap.get_block(missing, timeout=1.0)
        assert err.value.cid == missing and err.value.tried_peers == [alice.key]
        assert dag.cid_to_str(missing) in str(err.value)
        assert bob.bitswap.wanted() == []  # the want was cancelled


# -- misbehaving peers ---------------------------------------------------------------------


@pytest.mark.slow
async def test_peer_sending_wrong_bytes_is_caught_and_block_fetched_elsewhere(tmp_path):
    data = random.Random(9).randbytes(5000)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    lies: list[int] = []
    async with AsyncExitStack() as stack:
        liar = await stack.enter_async_context(lying_peer(lies))
        bob = await stack.enter_async_context(bitswap_node(tmp_path / "bob", block_timeout=30))
        honest = await stack.enter_async_context(bitswap_node(tmp_path / "honest"))
        imported = await import_file(honest.store, source, ImportParams(chunk_size=1024))
        liar_id = await connect(bob.host, host_addrs(liar)[0])

        # Only the liar is connected: the block is refused and the fetch fails clearly.
        with pytest.raises(BlockUnavailable):
            await bob.bitswap.get_block(imported.cid, timeout=2.0)
        assert bob.bad and bob.bad[0] == (liar_id, imported.cid)
        assert not await bob.store.has(imported.cid)
        assert [c async for c in bob.store.cids()] == []  # nothing the liar sent was stored
        assert bob.bitswap.stats.peers[liar_id.to_string()].bad_blocks >= 1

        # With an honest peer as well, every block arrives intact although the liar is asked.
        await connect(bob.host, honest.addr)
        bob.bad.clear()
        with trio.fail_after(30):
            result = await bob.bitswap.fetch_dag(imported.cid, timeout=20)
        assert b"".join([p async for p in read_file(bob.store, imported.cid)]) == data
        assert result.fetched == imported.blocks
        assert all(peer == liar_id for peer, _ in bob.bad)
        assert bob.bitswap.stats.peers[honest.key].bad_blocks == 0


async def test_malformed_message_drops_the_stream_not_the_host(tmp_path):
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(bitswap_node(tmp_path / "alice"))
        bob = await stack.enter_async_context(bitswap_node(tmp_path / "bob"))
        block = raw_block(b"still served")
        await alice.store.put(block)
        async with running_host() as vandal:
            peer = await connect(vandal, alice.addr)
            stream = await vandal.new_stream(peer, [TProtocol(PROTOCOL_V120)])
            await stream.write(frame(b"\x0a\x05\x0a\x03garbage"))
            await stream.write(b"\xff" * 12)  # and a frame length that is no varint
            with trio.fail_after(10):
                while alice.bitswap.stats.malformed_messages == 0:
                    await trio.sleep(0.01)
            assert alice.bitswap.stats.peers[vandal.get_id().to_string()].malformed_messages == 1
        await connect(bob.host, alice.addr)
        with trio.fail_after(20):
            assert await bob.bitswap.get_block(block.cid) == block.data


async def test_unconnected_block_is_found_through_find_providers(tmp_path):
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(bitswap_node(tmp_path / "alice"))
        block = raw_block(b"only alice has this")
        await alice.store.put(block)
        asked: list[CID] = []

        async def find_providers(cid: CID) -> list[PeerInfo]:
            asked.append(cid)
            return [PeerInfo(alice.host.get_id(), alice.host.get_addrs())]

        bob = await stack.enter_async_context(
            bitswap_node(tmp_path / "bob", find_providers=find_providers)
        )
        with trio.fail_after(20):
            assert await bob.bitswap.get_block(block.cid) == block.data
        assert asked == [block.cid]
        assert alice.host.get_id() in bob.host.get_connected_peers()


@pytest.mark.parametrize("protocol", [PROTOCOL_V100, PROTOCOL_V110])
async def test_older_protocol_peers_are_answered_in_their_own_dialect(protocol, tmp_path):
    """A real host that only knows bitswap 1.0.0 (bare blocks) or 1.1.0 (prefixed blocks)."""
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(bitswap_node(tmp_path / "alice"))
        block = raw_block(b"for an old peer")
        await alice.store.put(block)
        old = await stack.enter_async_context(running_host())
        replies: trio.MemorySendChannel[tuple[str, Message]]
        replies, received = trio.open_memory_channel[tuple[str, Message]](10)

        async def handle(stream: INetStream) -> None:
            raw = await FrameReader(stream, 1 << 22).next()
            assert raw is not None
            await replies.send((str(stream.get_protocol()), decode_message(raw)))

        old.set_stream_handler(TProtocol(protocol), handle)
        peer = await connect(old, alice.addr)
        stream = await old.new_stream(peer, [TProtocol(protocol)])
        want = Message(entries=[WantEntry(block.cid)])
        await stream.write(frame(encode_message(want, protocol)))
        with trio.fail_after(10):
            used, reply = await received.receive()
        assert used == protocol
        assert [p.prefix.block_for(p.data).data for p in reply.blocks] == [block.data]
        # 1.0.0 sends bare bytes (CIDv0 implied); 1.1.0 sends the CID prefix with them.
        implied = BlockPrefix(0, 0x70, 0x12, 32)
        assert reply.blocks[0].prefix == (
            implied if protocol == PROTOCOL_V100 else BlockPrefix.of(block.cid)
        )
