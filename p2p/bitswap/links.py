"""Our outbound bitswap stream to one peer: everything we send that peer goes on it.

Kubo's bitswap only reads streams opened towards it and never reads answers on a stream it
opened (docs/decisions.md), so artdag sends both its wants and its answers (blocks,
presences) on a stream it opens itself, as go-bitswap does: one long-lived stream per peer,
opened on first use, written under a lock (one message at a time), reopened after a failure.
Wants are queued and coalesced: however many ``get_block`` calls run, one message carries
every want queued since the last one went out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID

from dag import Block

from .errors import BitswapError
from .messages import PROTOCOL_V120, PROTOCOLS, Message, WantEntry, encode_frame

__all__ = ["LinkError", "PeerLink"]

log = logging.getLogger("artdag.p2p.bitswap")


class LinkError(BitswapError):
    """Sending to a peer failed; ``negotiation`` is True if it does not speak bitswap at all."""

    def __init__(self, message: str, *, negotiation: bool = False) -> None:
        super().__init__(message)
        self.negotiation = negotiation


class PeerLink:
    def __init__(
        self,
        host: IHost,
        peer_id: PeerID,
        on_failure: Callable[[PeerLink, LinkError], Awaitable[None]],
        *,
        open_timeout: float = 10.0,
        write_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.peer_id = peer_id
        self.key = peer_id.to_string()
        self.protocol: str = PROTOCOL_V120
        self._on_failure = on_failure
        self._open_timeout = open_timeout
        self._write_timeout = write_timeout
        self._stream: INetStream | None = None
        self._lock = trio.Lock()
        self._wants: dict[bytes, WantEntry] = {}
        self._wake = trio.Event()
        self.closed = False

    async def send(self, msg: Message, blocks: list[Block] | None = None) -> int:
        """Write one message (opening the stream if needed); the bytes written. LinkError."""
        async with self._lock:
            if self.closed:
                raise LinkError(f"link to {self.key} is closed")
            stream = self._stream
            if stream is None:
                try:
                    with trio.fail_after(self._open_timeout):
                        stream = await self.host.new_stream(
                            self.peer_id, [TProtocol(p) for p in PROTOCOLS]
                        )
                except Exception as exc:
                    raise LinkError(
                        f"cannot open a bitswap stream to {self.key}: {exc!r}", negotiation=True
                    ) from None
                self.protocol = str(stream.get_protocol() or PROTOCOL_V120)
                self._stream = stream
            data = encode_frame(msg, self.protocol, blocks)
            try:
                with trio.fail_after(self._write_timeout):
                    await stream.write(data)
            except Exception as exc:
                self._stream = None
                await _reset(stream)
                raise LinkError(f"bitswap write to {self.key} failed: {exc!r}") from None
            return len(data)

    def queue_wants(self, entries: list[WantEntry]) -> None:
        for entry in entries:
            # A later entry for the same CID (e.g. a cancel) replaces an unsent earlier one.
            self._wants[bytes(entry.cid.digest)] = entry
        self._wake.set()

    async def run_want_sender(self) -> None:
        """Send queued wants until the link closes (a task in the bitswap nursery)."""
        while not self.closed:
            await self._wake.wait()
            self._wake = trio.Event()
            if not self._wants or self.closed:
                continue
            entries = list(self._wants.values())
            self._wants.clear()
            try:
                await self.send(Message(entries=entries))
            except LinkError as exc:
                log.debug("%s", exc)
                await self._on_failure(self, exc)

    async def aclose(self) -> None:
        self.closed = True
        self._wake.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            with trio.move_on_after(1):
                await stream.close()


async def _reset(stream: INetStream) -> None:
    try:
        with trio.move_on_after(1):
            await stream.reset()
    except Exception as exc:  # the connection may be gone already
        log.debug("stream reset failed: %r", exc)
