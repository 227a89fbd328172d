"""CIDs and verified blocks.

A :class:`Block` can only be made by hashing its bytes (:meth:`Block.encode`) or by checking them
against a CID someone else gave us (:meth:`Block.checked`), so code that holds a ``Block`` never
has to wonder whether its bytes match its CID.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from multiformats import CID, multibase, multicodec, multihash

from ._varint import decode_uvarint, encode_uvarint
from .errors import BlockCorrupt, CidError

__all__ = ["CID", "DEFAULT_HASH", "Block", "cid_to_str", "multihash_key", "parse_cid"]

DEFAULT_HASH = "sha2-256"
SUPPORTED_CODECS = frozenset({"raw", "dag-pb", "dag-cbor"})


_HASHERS: dict[str, Callable[[bytes], bytes]] = {
    "sha2-256": lambda data: hashlib.sha256(data).digest(),
    "sha2-512": lambda data: hashlib.sha512(data).digest(),
    "sha3-256": lambda data: hashlib.sha3_256(data).digest(),
    "sha3-512": lambda data: hashlib.sha3_512(data).digest(),
    "blake2b-256": lambda data: hashlib.blake2b(data, digest_size=32).digest(),
}
_PREFIXES = {name: encode_uvarint(multihash.get(name).code) for name in _HASHERS}


def hash_bytes(data: bytes, hashfun: str = "sha2-256") -> bytes:
    """The multihash of ``data``. Uses hashlib directly: ``multihash.digest`` raises and catches
    TypeErrors inside, whose tracebacks keep each hashed chunk alive until the cycle collector
    runs, so memory would grow with file size."""
    try:
        digest = _HASHERS[hashfun](data)
    except KeyError:
        raise CidError(f"unsupported hash function {hashfun}") from None
    return _PREFIXES[hashfun] + encode_uvarint(len(digest)) + digest


@functools.cache
def _parts(version: int, codec: int | str, hashfun: int) -> tuple[Any, Any, Any]:
    base = multibase.get("base58btc" if version == 0 else "base32")
    return (
        base,
        multicodec.get(codec) if isinstance(codec, str) else multicodec.get(code=codec),
        (multihash.get(code=hashfun)),
    )


def make_cid(version: int, codec: int | str, mh: bytes) -> CID:
    """Build a CID from a multihash without multiformats' argument validation.

    That validation raises and catches TypeErrors internally; their tracebacks keep the
    calling frames (and the block bytes they hold) alive until the cycle collector runs, which
    made memory grow with file size during imports. The parts are validated once and cached.
    """
    try:
        code, pos = decode_uvarint(mh)
        length, pos = decode_uvarint(mh, pos)
    except (EOFError, ValueError):
        raise CidError("malformed multihash") from None
    if pos + length != len(mh):
        raise CidError("malformed multihash")
    base, codec_obj, hash_obj = _parts(version, codec, code)
    if version == 0 and (codec_obj.name != "dag-pb" or hash_obj.name != "sha2-256"):
        raise CidError("CIDv0 is only for dag-pb blocks hashed with sha2-256")
    return CID._new_instance(CID, base, version, codec_obj, hash_obj, bytes(mh))


def decode_cid_bytes(raw: bytes) -> tuple[CID, int]:
    """Decode the binary CID at the start of ``raw``; return it and its length in bytes."""
    try:
        if raw[:2] == b"\x12\x20":
            return make_cid(0, "dag-pb", bytes(raw[:34])), 34
        version, pos = decode_uvarint(raw)
        codec, pos = decode_uvarint(raw, pos)
        start = pos
        _, pos = decode_uvarint(raw, pos)
        length, pos = decode_uvarint(raw, pos)
        end = pos + length
        if version != 1 or end > len(raw):
            raise CidError("not a binary CIDv1")
        return make_cid(1, codec, bytes(raw[start:end])), end
    except CidError:
        raise
    except (KeyError, ValueError, IndexError, EOFError) as exc:
        raise CidError(f"not a binary CID ({exc})") from None


def parse_cid(value: str | bytes | CID) -> CID:
    """Parse a CID given as text (any multibase, or a CIDv0 ``Qm…``) or bytes."""
    if isinstance(value, CID):
        return value
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("/ipfs/"):
            value = value[len("/ipfs/") :]
        if not value:
            raise CidError("empty CID")
    try:
        return CID.decode(value)
    except Exception as exc:  # multiformats raises several error types
        shown = value if isinstance(value, str) else value.hex()
        raise CidError(f"not a valid CID: {shown[:80]!r} ({_first_line(exc)})") from None


def cid_to_str(cid: CID) -> str:
    """Canonical text form: base58btc for CIDv0, base32 for CIDv1 (as Kubo prints them)."""
    if cid.version == 0:
        return str(cid)
    return cid.encode("base32")


def multihash_key(cid: CID) -> bytes:
    """The bytes a block is stored under: its multihash, so raw and dag-pb views share a block."""
    return bytes(cid.digest)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Block:
    """Bytes together with the CID they hash to."""

    cid: CID
    data: bytes

    @classmethod
    def encode(
        cls, data: bytes, codec: str = "raw", *, version: int = 1, hashfun: str = DEFAULT_HASH
    ) -> Block:
        if version == 0:
            if codec != "dag-pb" or hashfun != "sha2-256":
                raise CidError("CIDv0 is only for dag-pb blocks hashed with sha2-256")
            return cls(make_cid(0, "dag-pb", hash_bytes(data, hashfun)), data)
        return cls(make_cid(1, codec, hash_bytes(data, hashfun)), data)

    @classmethod
    def checked(cls, cid: CID, data: bytes) -> Block:
        """Make a block from bytes received from elsewhere; raise BlockCorrupt unless they match."""
        hashfun = cid.hashfun.name
        if hashfun not in _HASHERS:
            raise BlockCorrupt(f"unsupported hash function {hashfun} in {cid_to_str(cid)}")
        if hash_bytes(data, hashfun) != cid.digest:
            raise BlockCorrupt(f"block bytes do not match {cid_to_str(cid)}")
        return cls(cid, data)

    def __repr__(self) -> str:
        return f"Block({cid_to_str(self.cid)}, {len(self.data)} bytes)"
