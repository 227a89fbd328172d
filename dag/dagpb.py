"""dag-pb nodes and UnixFS ``Data`` messages, encoded by hand.

No maintained Python library encodes dag-pb and UnixFS byte-for-byte as Kubo does, and both are
tiny protobuf messages, so this module writes and reads them directly. What matters for matching
``ipfs add`` (see docs/decisions.md): links come before data in a ``PBNode``, every link carries an
empty ``Name`` and the cumulative ``Tsize``, ``blocksizes`` are unpacked repeated varints (proto2),
and an empty chunk omits the ``Data`` field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from multiformats import CID

from ._varint import decode_uvarint, encode_uvarint
from .cids import decode_cid_bytes
from .errors import CidError, CodecError

__all__ = ["PBLink", "PBNode", "UnixFSData", "UnixFSType", "decode_node", "encode_node"]

_VARINT, _LEN = 0, 2


class UnixFSType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class PBLink:
    cid: CID
    tsize: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: UnixFSType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())

    def encode(self) -> bytes:
        out = bytearray()
        _put_key(out, 1, _VARINT)
        _put_varint(out, int(self.type))
        if self.data:
            _put_bytes(out, 2, self.data)
        if self.filesize is not None:
            _put_key(out, 3, _VARINT)
            _put_varint(out, self.filesize)
        for size in self.blocksizes:
            _put_key(out, 4, _VARINT)
            _put_varint(out, size)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> UnixFSData:
        kind: int | None = None
        payload: bytes | None = None
        filesize: int | None = None
        sizes: list[int] = []
        for number, wire, value in _fields(data, "UnixFS Data"):
            if number == 1 and wire == _VARINT:
                kind = value
            elif number == 2 and wire == _LEN:
                payload = value
            elif number == 3 and wire == _VARINT:
                filesize = value
            elif number == 4 and wire == _VARINT:
                sizes.append(value)
            elif number == 4 and wire == _LEN:  # tolerate packed encoding from other writers
                sizes.extend(v for _, _, v in _packed_varints(value))
        if kind is None:
            raise CodecError("invalid UnixFS data: missing Type")
        try:
            unixfs_type = UnixFSType(kind)
        except ValueError:
            raise CodecError(f"invalid UnixFS data: unknown Type {kind}") from None
        return cls(unixfs_type, payload, filesize, tuple(sizes))


def encode_node(node: PBNode) -> bytes:
    out = bytearray()
    for link in node.links:
        body = bytearray()
        _put_bytes(body, 1, bytes(link.cid))
        _put_bytes(body, 2, link.name.encode())
        _put_key(body, 3, _VARINT)
        _put_varint(body, link.tsize)
        _put_bytes(out, 2, bytes(body))
    if node.data is not None:
        _put_bytes(out, 1, node.data)
    return bytes(out)


def decode_node(data: bytes) -> PBNode:
    links: list[PBLink] = []
    payload: bytes | None = None
    for number, wire, value in _fields(data, "dag-pb node"):
        if number == 2 and wire == _LEN:
            links.append(_decode_link(value))
        elif number == 1 and wire == _LEN:
            payload = value
        else:
            raise CodecError(f"invalid dag-pb node: unexpected field {number}")
    return PBNode(tuple(links), payload)


def _decode_link(data: bytes) -> PBLink:
    cid: CID | None = None
    name, tsize = "", 0
    for number, wire, value in _fields(data, "dag-pb link"):
        if number == 1 and wire == _LEN:
            try:
                cid, used = decode_cid_bytes(value)
            except CidError:
                raise CodecError("invalid dag-pb link: Hash is not a CID") from None
            if used != len(value):
                raise CodecError("invalid dag-pb link: Hash has trailing bytes")
        elif number == 2 and wire == _LEN:
            name = value.decode("utf-8", errors="replace")
        elif number == 3 and wire == _VARINT:
            tsize = value
    if cid is None:
        raise CodecError("invalid dag-pb link: missing Hash")
    return PBLink(cid, tsize, name)


def _put_varint(out: bytearray, value: int) -> None:
    out += encode_uvarint(value)


def _put_key(out: bytearray, number: int, wire: int) -> None:
    _put_varint(out, (number << 3) | wire)


def _put_bytes(out: bytearray, number: int, value: bytes) -> None:
    _put_key(out, number, _LEN)
    _put_varint(out, len(value))
    out += value


def _read_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    try:
        return decode_uvarint(data, pos)
    except EOFError:
        raise CodecError(f"invalid {what}: truncated varint") from None
    except ValueError:
        raise CodecError(f"invalid {what}: varint too long") from None


def _fields(data: bytes, what: str):
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos, what)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos, what)
            yield number, wire, value
        elif wire == _LEN:
            length, pos = _read_varint(data, pos, what)
            if pos + length > len(data):
                raise CodecError(f"invalid {what}: field {number} runs past the end")
            yield number, wire, bytes(data[pos : pos + length])
            pos += length
        else:
            raise CodecError(f"invalid {what}: unsupported wire type {wire}")


def _packed_varints(data: bytes):
    pos = 0
    while pos < len(data):
        value, pos = _read_varint(data, pos, "packed varints")
        yield 4, _VARINT, value
