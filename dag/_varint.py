"""Unsigned LEB128 varints (multiformats, protobuf and CAR framing all use them).

Written here rather than taken from ``multiformats.varint``, whose argument checks raise and
catch exceptions internally; the tracebacks keep the caller's frames (and the block bytes they
hold) alive until the cycle collector runs.
"""

from __future__ import annotations

MAX_BYTES = 9  # 63 bits, as the multiformats unsigned-varint spec allows


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("a varint cannot be negative")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """Return (value, position after it). EOFError if ``buf`` ends inside the varint,
    ValueError if it is longer than 9 bytes."""
    value = shift = 0
    end = len(buf)
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 7 * MAX_BYTES:
            raise ValueError("varint longer than 9 bytes")
    raise EOFError("buffer ends inside a varint")
