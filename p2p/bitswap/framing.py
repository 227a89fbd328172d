"""Length-prefixed framing of bitswap messages on a libp2p stream (unsigned varint + bytes).

A small buffered reader instead of py-libp2p's byte-at-a-time varint reads. Each ``read``
asks for far more than is buffered, so the muxer hands over its whole buffer at once: py-libp2p's
Yamux returns ``n`` bytes by copying them out and shifting the rest of its buffer (up to its
16 MiB window) down, so reading a lagging stream 256 KiB at a time costs a memmove of the whole
backlog per read. Received pieces are kept as a list and each frame is assembled with one copy.
"""

from __future__ import annotations

from collections import deque

from libp2p.abc import INetStream

from dag import encode_uvarint

from .errors import MessageError

__all__ = ["FrameReader", "frame"]

_READ_SIZE = 32 << 20  # more than Yamux ever buffers: take all it has


def frame(payload: bytes) -> bytes:
    """``payload`` with its uvarint length in front."""
    return encode_uvarint(len(payload)) + payload


class FrameReader:
    """Reads frames of at most ``max_size`` bytes; MessageError for an oversized or cut frame."""

    def __init__(self, stream: INetStream, max_size: int) -> None:
        self._stream = stream
        self._max = max_size
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of the first chunk already consumed
        self._available = 0

    async def _fill(self) -> bool:
        try:
            chunk = await self._stream.read(_READ_SIZE)
        except EOFError:  # StreamEOF / MuxedStreamEOF: the peer closed its side
            return False
        if not chunk:
            return False
        self._chunks.append(chunk)
        self._available += len(chunk)
        return True

    def _peek(self, n: int) -> bytes:
        out = bytearray()
        offset = self._offset
        for chunk in self._chunks:
            out += chunk[offset : offset + n - len(out)]
            offset = 0
            if len(out) >= n:
                break
        return bytes(out)

    def _take(self, n: int) -> bytes:
        first = self._chunks[0]
        if self._offset == 0 and len(first) == n:
            self._chunks.popleft()
            self._available -= n
            return first
        parts: list[memoryview] = []
        need = n
        while need:
            chunk = self._chunks[0]
            piece = memoryview(chunk)[self._offset : self._offset + need]
            parts.append(piece)
            need -= len(piece)
            if self._offset + len(piece) == len(chunk):
                self._chunks.popleft()
                self._offset = 0
            else:
                self._offset += len(piece)
        self._available -= n
        return b"".join(parts)

    async def next(self) -> bytes | None:
        """The next frame's bytes, or None at a clean end of stream."""
        while True:
            head = self._peek(min(10, self._available))
            length = shift = pos = 0
            complete = False
            for byte in head:
                pos += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    complete = True
                    break
                shift += 7
            if complete:
                break
            if len(head) >= 10:
                raise MessageError("bitswap frame length is not a valid varint")
            if not await self._fill():
                if self._available:
                    raise MessageError("bitswap stream ended inside a frame length")
                return None
        if length > self._max:
            raise MessageError(f"bitswap message of {length} bytes exceeds the {self._max} limit")
        while self._available < pos + length:
            if not await self._fill():
                raise MessageError("bitswap stream ended inside a message")
        self._take(pos)
        return self._take(length) if length else b""
