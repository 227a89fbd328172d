"""Bitswap's wire messages (``/ipfs/bitswap/1.2.0``, ``1.1.0``, ``1.0.0``) as plain records.

The codec is written by hand rather than taken from py-libp2p's generated classes
(``libp2p.bitswap.pb.bitswap_pb2``): the message is five small protobuf fields, a hand-written
decoder can refuse oversized or malformed input with one clear error (a generated parser
accepts anything that parses and leaves limits to the caller), it never copies a block more
than once, and it keeps this package independent of py-libp2p's bitswap engine, whose limits
(512 KiB blocks) and stream handling do not fit artdag (see docs/decisions.md).

The schema (go-bitswap ``message.proto``, proto3)::

    message Message {
      message Wantlist {
        enum WantType { Block = 0; Have = 1; }
        message Entry { bytes block = 1; int32 priority = 2; bool cancel = 3;
                        WantType wantType = 4; bool sendDontHave = 5; }
        repeated Entry entries = 1;  bool full = 2;
      }
      message Block { bytes prefix = 1; bytes data = 2; }
      enum BlockPresenceType { Have = 0; DontHave = 1; }
      message BlockPresence { bytes cid = 1; BlockPresenceType type = 2; }
      Wantlist wantlist = 1;
      repeated bytes blocks = 2;           // 1.0.0: bare block bytes, CIDv0 implied
      repeated Block payload = 3;          // 1.1.0+: CID prefix + bytes
      repeated BlockPresence blockPresences = 4;   // 1.2.0
      int32 pendingBytes = 5;
    }

A received block carries no CID, only a prefix (version, codec, hash function, digest length):
its CID is whatever its bytes hash to (:meth:`BlockPrefix.block_for`), so a peer cannot make a
block claim a CID its bytes do not have; it can only send bytes we did not ask for.
Everything here is pure: bytes in, records out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from multiformats import multicodec, multihash

from dag import CID, Block, check_cid, encode_uvarint
from dag.errors import DagError

from .errors import MessageError

__all__ = [
    "PROTOCOL_V100",
    "PROTOCOL_V110",
    "PROTOCOL_V120",
    "PROTOCOLS",
    "BlockPrefix",
    "Message",
    "PayloadBlock",
    "Presence",
    "PresenceType",
    "WantEntry",
    "WantType",
    "decode_message",
    "encode_frame",
    "encode_message",
]

PROTOCOL_V120 = "/ipfs/bitswap/1.2.0"
PROTOCOL_V110 = "/ipfs/bitswap/1.1.0"
PROTOCOL_V100 = "/ipfs/bitswap/1.0.0"
PROTOCOL_BARE = "/ipfs/bitswap"  # what 1.0.0 was first called; Kubo still registers it
PROTOCOLS = (PROTOCOL_V120, PROTOCOL_V110, PROTOCOL_V100, PROTOCOL_BARE)

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_INT32_WRAP = 1 << 64
_CIDV0_PREFIX = b"\x00\x70\x12\x20"


class WantType(IntEnum):
    BLOCK = 0
    HAVE = 1


class PresenceType(IntEnum):
    HAVE = 0
    DONT_HAVE = 1


@dataclass(frozen=True, slots=True)
class WantEntry:
    cid: CID
    want_type: WantType = WantType.BLOCK
    priority: int = 1
    cancel: bool = False
    send_dont_have: bool = False


@dataclass(frozen=True, slots=True)
class Presence:
    cid: CID
    type: PresenceType


@dataclass(frozen=True, slots=True)
class BlockPrefix:
    """Everything of a CID but its digest; the digest comes from hashing the block's bytes."""

    version: int
    codec: int
    hash_code: int
    digest_length: int

    @classmethod
    def of(cls, cid: CID) -> BlockPrefix:
        return cls(cid.version, cid.codec.code, cid.hashfun.code, len(cid.raw_digest))

    def encode(self) -> bytes:
        return b"".join(
            _uvarint(v) for v in (self.version, self.codec, self.hash_code, self.digest_length)
        )

    @classmethod
    def decode(cls, raw: bytes) -> BlockPrefix:
        values, pos = [], 0
        for _ in range(4):
            value, pos = _read_varint(raw, pos)
            values.append(value)
        if pos != len(raw):
            raise MessageError("bitswap block prefix has trailing bytes")
        return cls(*values)

    def block_for(self, data: bytes) -> Block:
        """Hash ``data`` as this prefix says; raise MessageError for a prefix we cannot use."""
        try:
            hash_name = multihash.get(code=self.hash_code).name
            codec_name = multicodec.get(code=self.codec).name
        except (KeyError, ValueError):  # unknown, or a codec that is not a hash (0x55 raw)
            raise MessageError(
                f"bitswap block prefix has an unknown codec or hash: {self}"
            ) from None
        try:
            if self.version == 0:
                block = Block.encode(data, "dag-pb", version=0)
            elif self.version == 1:
                block = Block.encode(data, codec_name, version=1, hashfun=hash_name)
            else:
                raise MessageError(f"bitswap block prefix has CID version {self.version}")
        except DagError as exc:
            raise MessageError(f"bitswap block prefix cannot be used: {exc}") from None
        if len(block.cid.raw_digest) != self.digest_length:
            raise MessageError("bitswap block prefix asks for a truncated digest")
        return block


@dataclass(frozen=True, slots=True)
class PayloadBlock:
    """A block as received: its prefix (CIDv0 for 1.0.0's bare blocks) and its bytes."""

    prefix: BlockPrefix
    data: bytes


@dataclass(slots=True)
class Message:
    entries: list[WantEntry] = field(default_factory=list)
    full: bool = False
    blocks: list[PayloadBlock] = field(default_factory=list)
    presences: list[Presence] = field(default_factory=list)
    pending_bytes: int = 0

    def is_empty(self) -> bool:
        return not (self.entries or self.full or self.blocks or self.presences)


# -- encoding --------------------------------------------------------------------------------


def encode_message(
    msg: Message, protocol: str = PROTOCOL_V120, blocks: list[Block] | None = None
) -> bytes:
    """The protobuf bytes of ``msg`` for a peer that speaks ``protocol``.

    ``blocks`` (known CIDs) are sent as payload for 1.1.0+ and as bare bytes for 1.0.0;
    ``msg.blocks`` (prefix + bytes, used by tests to build arbitrary payloads) are sent as is.
    For 1.0.0/1.1.0 peers want-have entries become want-block and presences are left out,
    since those versions know neither.
    """
    return b"".join(_message_parts(msg, protocol, blocks))


def encode_frame(
    msg: Message, protocol: str = PROTOCOL_V120, blocks: list[Block] | None = None
) -> bytes:
    """:func:`encode_message` with its uvarint length in front, built with one copy of the
    block bytes (they are most of a message)."""
    parts = _message_parts(msg, protocol, blocks)
    return b"".join([_uvarint(sum(len(p) for p in parts)), *parts])


def _message_parts(msg: Message, protocol: str, blocks: list[Block] | None) -> list[bytes]:
    modern = protocol == PROTOCOL_V120
    legacy = protocol in (PROTOCOL_V100, PROTOCOL_BARE)
    parts: list[bytes] = []
    out = bytearray()
    if msg.entries or msg.full:
        wl = bytearray()
        for entry in msg.entries:
            e = bytearray()
            _put_bytes(e, 1, bytes(entry.cid))
            if entry.priority:
                _put_varint_field(e, 2, entry.priority % _INT32_WRAP)
            if entry.cancel:
                _put_varint_field(e, 3, 1)
            if modern and entry.want_type != WantType.BLOCK:
                _put_varint_field(e, 4, int(entry.want_type))
            if modern and entry.send_dont_have:
                _put_varint_field(e, 5, 1)
            _put_bytes(wl, 1, bytes(e))
        if msg.full:
            _put_varint_field(wl, 2, 1)
        _put_bytes(out, 1, bytes(wl))
    payloads = [(BlockPrefix.of(b.cid).encode(), b.data) for b in blocks or ()]
    payloads += [(raw.prefix.encode(), raw.data) for raw in msg.blocks]
    for prefix, data in payloads:
        if legacy:
            _put_key(out, 2, _LEN)
            out += _uvarint(len(data))
        else:
            head = bytearray()
            _put_bytes(head, 1, prefix)
            _put_key(head, 2, _LEN)
            head += _uvarint(len(data))
            _put_key(out, 3, _LEN)
            out += _uvarint(len(head) + len(data))
            out += head
        parts += [bytes(out), data]
        out = bytearray()
    if modern:
        for presence in msg.presences:
            p = bytearray()
            _put_bytes(p, 1, bytes(presence.cid))
            if presence.type != PresenceType.HAVE:
                _put_varint_field(p, 2, int(presence.type))
            _put_bytes(out, 4, bytes(p))
    if msg.pending_bytes:
        _put_varint_field(out, 5, msg.pending_bytes % _INT32_WRAP)  # int32: may be negative
    if out:
        parts.append(bytes(out))
    return parts


# -- decoding --------------------------------------------------------------------------------


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Parse one message; MessageError names the first thing wrong with it."""
    view = memoryview(data)
    msg = Message()
    for number, wire, value in _fields(view):
        if number == 1 and wire == _LEN:
            _decode_wantlist(value, msg)
        elif number == 2 and wire == _LEN:
            msg.blocks.append(PayloadBlock(BlockPrefix.decode(_CIDV0_PREFIX), bytes(value)))
        elif number == 3 and wire == _LEN:
            msg.blocks.append(_decode_payload(value))
        elif number == 4 and wire == _LEN:
            msg.presences.append(_decode_presence(value))
        elif number == 5 and wire == _VARINT:
            msg.pending_bytes = _int32(value)
    return msg


def _decode_wantlist(view: memoryview, msg: Message) -> None:
    for number, wire, value in _fields(view):
        if number == 1 and wire == _LEN:
            msg.entries.append(_decode_entry(value))
        elif number == 2 and wire == _VARINT:
            msg.full = bool(value)


def _decode_entry(view: memoryview) -> WantEntry:
    cid: CID | None = None
    priority, cancel, want_type, send_dont_have = 1, False, WantType.BLOCK, False
    for number, wire, value in _fields(view):
        if number == 1 and wire == _LEN:
            cid = _cid(value, "wantlist entry")
        elif number == 2 and wire == _VARINT:
            priority = _int32(value)
        elif number == 3 and wire == _VARINT:
            cancel = bool(value)
        elif number == 4 and wire == _VARINT:
            if value not in (0, 1):
                raise MessageError(f"bitswap wantlist entry has unknown wantType {value}")
            want_type = WantType(value)
        elif number == 5 and wire == _VARINT:
            send_dont_have = bool(value)
    if cid is None:
        raise MessageError("bitswap wantlist entry without a CID")
    return WantEntry(cid, want_type, priority, cancel, send_dont_have)


def _decode_payload(view: memoryview) -> PayloadBlock:
    prefix: BlockPrefix | None = None
    data = b""
    for number, wire, value in _fields(view):
        if number == 1 and wire == _LEN:
            prefix = BlockPrefix.decode(bytes(value))
        elif number == 2 and wire == _LEN:
            data = bytes(value)
    if prefix is None:
        raise MessageError("bitswap payload block without a prefix")
    return PayloadBlock(prefix, data)


def _decode_presence(view: memoryview) -> Presence:
    cid: CID | None = None
    kind = PresenceType.HAVE
    for number, wire, value in _fields(view):
        if number == 1 and wire == _LEN:
            cid = _cid(value, "block presence")
        elif number == 2 and wire == _VARINT:
            if value not in (0, 1):
                raise MessageError(f"bitswap block presence has unknown type {value}")
            kind = PresenceType(value)
    if cid is None:
        raise MessageError("bitswap block presence without a CID")
    return Presence(cid, kind)


def _cid(view: memoryview, what: str) -> CID:
    try:
        return check_cid(CID.decode(bytes(view)))  # a digest over 128 bytes: refused
    except Exception:
        raise MessageError(f"bitswap {what} holds an invalid CID") from None


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# -- protobuf primitives ---------------------------------------------------------------------


_uvarint = encode_uvarint


def _read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """A protobuf varint: up to 10 bytes (dag's multiformats varints stop at 9), since Go
    encodes a negative int32 as ten."""
    value = shift = 0
    end = len(buf)
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise MessageError("bitswap message has a varint longer than 10 bytes")
    raise MessageError("bitswap message ends inside a varint")


def _put_key(out: bytearray, number: int, wire: int) -> None:
    out += _uvarint((number << 3) | wire)


def _put_varint_field(out: bytearray, number: int, value: int) -> None:
    _put_key(out, number, _VARINT)
    out += _uvarint(value)


def _put_bytes(out: bytearray, number: int, value: bytes) -> None:
    _put_key(out, number, _LEN)
    out += _uvarint(len(value))
    out += value


def _fields(view: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) triples: an int for varints, a memoryview for bytes."""
    pos, end = 0, len(view)
    while pos < end:
        key, pos = _read_varint(view, pos)
        number, wire = key >> 3, key & 7
        value: object
        if wire == _VARINT:
            value, pos = _read_varint(view, pos)
        elif wire == _LEN:
            length, pos = _read_varint(view, pos)
            if pos + length > end:
                raise MessageError(f"bitswap message field {number} runs past the end")
            value = view[pos : pos + length]
            pos += length
        elif wire == _I64:
            pos += 8
            value = None
        elif wire == _I32:
            pos += 4
            value = None
        else:
            raise MessageError(f"bitswap message has unsupported wire type {wire}")
        if pos > end:
            raise MessageError(f"bitswap message field {number} runs past the end")
        if number == 0:
            raise MessageError("bitswap message has field number 0")
        yield number, wire, value
