"""A TEST CALENDAR SERVER for OpenTimestamps, started by the tests on 127.0.0.1.

It stands in for the public calendars (which need the internet and real Bitcoin blocks) and
speaks their HTTP protocol as ``opentimestamps.calendar.RemoteCalendar`` uses it:

- ``POST /digest`` with the raw digest as body: 200 with a serialized ``Timestamp`` starting at
  that digest: ``append <8-byte nonce>``, ``sha256``, then ``PendingAttestation(<our URL>)``.
- ``GET /timestamp/<hex commitment>``: 404 until :meth:`TestCalendar.mine` has put the
  commitment in a block, then 200 with the timestamp from the commitment to a
  ``BitcoinBlockHeaderAttestation(height)``: the calendar's merkle tree (``make_merkle_tree``),
  a transaction that carries the tip in an ``OP_RETURN`` output, and the block's transaction
  merkle tree, built by ``opentimestamps.bitcoin.make_timestamp_from_block`` exactly as the real
  calendar's stamper does.

The blocks are synthetic (regtest difficulty, a coinbase plus our transaction), but the headers
are real 80-byte Bitcoin headers whose merkle root is the one the proofs lead to. The server
also serves them in the Esplora API shape (``GET /block-height/<h>`` -> block hash text,
``GET /block/<hash>/header`` -> header hex), so the verifier can use it as its header source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import trio
from bitcoin.core import (
    COIN,
    CBlock,
    CBlockHeader,
    COutPoint,
    CTransaction,
    CTxIn,
    CTxOut,
    b2lx,
)
from bitcoin.core.script import OP_RETURN, CScript
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from opentimestamps.bitcoin import make_timestamp_from_block
from opentimestamps.core.notary import PendingAttestation
from opentimestamps.core.op import OpAppend, OpSHA256
from opentimestamps.core.serialize import BytesSerializationContext
from opentimestamps.core.timestamp import Timestamp, make_merkle_tree
from quart import Response, request
from quart_trio import QuartTrio

__all__ = ["MinedBlock", "TestCalendar", "start_test_calendar"]

REGTEST_BITS = 0x207FFFFF


@dataclass(frozen=True)
class MinedBlock:
    height: int
    header: bytes  # 80 bytes
    hash: str  # as explorers print it
    time: int


def _serialize(stamp: Timestamp) -> bytes:
    ctx = BytesSerializationContext()
    stamp.serialize(ctx)
    return bytes(ctx.getbytes())


@dataclass
class TestCalendar:
    """State of the test calendar; ``url`` is set once the server listens."""

    __test__ = False  # not a pytest test class

    url: str = ""
    next_height: int = 800_000
    prev_hash: bytes = b"\x00" * 32
    pending: list[Timestamp] = field(default_factory=list)
    done: dict[bytes, Timestamp] = field(default_factory=dict)
    blocks: dict[int, MinedBlock] = field(default_factory=dict)
    submissions: int = 0

    def submit(self, digest: bytes) -> bytes:
        stamp = Timestamp(digest)
        commitment = stamp.ops.add(OpAppend(os.urandom(8))).ops.add(OpSHA256())
        commitment.attestations.add(PendingAttestation(self.url))
        self.pending.append(Timestamp(commitment.msg))
        self.submissions += 1
        return _serialize(stamp)

    def answer(self, commitment: bytes) -> bytes | None:
        stamp = self.done.get(commitment)
        return None if stamp is None else _serialize(stamp)

    def mine(self, when: int = 1_700_000_000) -> MinedBlock:
        """Put every pending commitment into a new synthetic block at ``next_height``."""
        if not self.pending:
            raise RuntimeError("test calendar: nothing to mine")
        leaves, self.pending = self.pending, []
        tip = make_merkle_tree(leaves)
        height = self.next_height
        coinbase = CTransaction(
            [CTxIn(COutPoint(), CScript([height, os.urandom(4)]))],
            [CTxOut(50 * COIN, CScript([OP_RETURN]))],
        )
        carrier = CTransaction(
            [CTxIn(COutPoint(os.urandom(32), 0))],
            [CTxOut(0, CScript([OP_RETURN, tip.msg]))],
        )
        block = CBlock(vtx=[coinbase, carrier])
        root = block.calc_merkle_root()
        block = CBlock(
            nVersion=0x20000000,
            hashPrevBlock=self.prev_hash,
            hashMerkleRoot=root,
            nTime=when,
            nBits=REGTEST_BITS,
            nNonce=0,
            vtx=[coinbase, carrier],
        )
        block_stamp = make_timestamp_from_block(tip.msg, block, height)
        assert block_stamp is not None
        tip.merge(block_stamp)
        header = _grind(block.get_header())
        for leaf in leaves:
            self.done[leaf.msg] = leaf
        mined = MinedBlock(height, header.serialize(), b2lx(header.GetHash()), when)
        self.blocks[height] = mined
        self.prev_hash = header.GetHash()
        self.next_height += 1
        return mined


def _grind(header: CBlockHeader) -> CBlockHeader:
    """Find a nonce meeting the regtest target (about two tries)."""
    target = (REGTEST_BITS & 0xFFFFFF) << (8 * ((REGTEST_BITS >> 24) - 3))
    for nonce in range(1 << 16):
        candidate = CBlockHeader(
            nVersion=header.nVersion,
            hashPrevBlock=header.hashPrevBlock,
            hashMerkleRoot=header.hashMerkleRoot,
            nTime=header.nTime,
            nBits=header.nBits,
            nNonce=nonce,
        )
        if int.from_bytes(candidate.GetHash(), "little") <= target:
            return candidate
    raise RuntimeError("test calendar: no nonce found")


def _app(calendar: TestCalendar) -> QuartTrio:
    app = QuartTrio("ots_test_calendar")

    @app.post("/digest")
    async def digest() -> Response:
        body = await request.get_data()
        assert isinstance(body, bytes)
        if not 1 <= len(body) <= 64:
            return Response(b"digest too long", status=400)
        return Response(calendar.submit(body), content_type="application/octet-stream")

    @app.get("/timestamp/<hex_commitment>")
    async def timestamp(hex_commitment: str) -> Response:
        try:
            commitment = bytes.fromhex(hex_commitment)
        except ValueError:
            return Response(b"Invalid commitment", status=400)
        data = calendar.answer(commitment)
        if data is None:
            return Response(b"Pending confirmation in Bitcoin blockchain", status=404)
        return Response(data, content_type="application/octet-stream")

    @app.get("/block-height/<int:height>")
    async def block_height(height: int) -> Response:
        block = calendar.blocks.get(height)
        if block is None:
            return Response("Block not found", status=404)
        return Response(block.hash, content_type="text/plain")

    @app.get("/block/<block_hash>/header")
    async def block_header(block_hash: str) -> Response:
        for block in calendar.blocks.values():
            if block.hash == block_hash:
                return Response(block.header.hex(), content_type="text/plain")
        return Response("Block not found", status=404)

    return app


async def start_test_calendar(
    *, task_status: trio.TaskStatus[TestCalendar] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve a test calendar on 127.0.0.1 (a free port) until cancelled; reports its state."""
    calendar = TestCalendar()
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1

    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(serve, _app(calendar), config)
        calendar.url = urls[0].rstrip("/")
        task_status.started(calendar)
