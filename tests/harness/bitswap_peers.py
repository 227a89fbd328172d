"""Misbehaving bitswap peers: real py-libp2p hosts that speak the protocol through artdag's
codec but lie, for tests of how a node catches and routes around them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from p2p.bitswap import (
    PROTOCOL_V120,
    BlockPrefix,
    Message,
    PayloadBlock,
    Presence,
    PresenceType,
    WantType,
    decode_message,
    encode_message,
)
from p2p.bitswap.framing import FrameReader, frame
from p2p.host import running_host


@asynccontextmanager
async def lying_peer(counter: list[int]) -> AsyncIterator[IHost]:
    """A real host speaking bitswap 1.2.0 through our codec that claims to have every block
    and answers each want-block with the right CID prefix but other bytes."""
    async with running_host() as host, trio.open_nursery() as nursery:

        async def handle(stream: INetStream) -> None:
            peer = stream.muxed_conn.peer_id
            out = await host.new_stream(peer, [TProtocol(PROTOCOL_V120)])
            reader = FrameReader(stream, 1 << 22)
            while (raw := await reader.next()) is not None:
                reply = Message()
                for entry in decode_message(raw).entries:
                    if entry.cancel:
                        continue
                    if entry.want_type == WantType.HAVE:
                        reply.presences.append(Presence(entry.cid, PresenceType.HAVE))
                    else:
                        counter.append(1)
                        junk = b"not the bytes you want " + bytes(entry.cid)
                        reply.blocks.append(PayloadBlock(BlockPrefix.of(entry.cid), junk))
                if not reply.is_empty():
                    await out.write(frame(encode_message(reply)))

        host.set_stream_handler(TProtocol(PROTOCOL_V120), handle)
        yield host
        nursery.cancel_scope.cancel()
