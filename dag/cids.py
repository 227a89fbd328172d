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

__all__ = [
    "CID",
    "DEFAULT_HASH",
    "MAX_DIGEST_SIZE",
    "Block",
    "check_cid",
    "cid_to_str",
    "identity_data",
    "multihash_key",
    "parse_cid",
]

DEFAULT_HASH = "sha2-256"
SUPPORTED_CODECS = frozenset({"raw", "dag-pb", "dag-cbor"})
IDENTITY = 0x00  # the multihash code of "identity": the digest is the block itself
MAX_DIGEST_SIZE = 128
"""The largest digest a CID may carry, identity or not: boxo's verifcid refuses larger ones
(``DefaultMaxDigestSize`` and ``DefaultMaxIdentityDigestSize``, both 128 bytes). It also keeps
a block's file name (its base32 multihash) far below the file system's 255-byte limit."""


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
    if length > MAX_DIGEST_SIZE:
        raise CidError(_too_long(code, length))
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
        code, pos = decode_uvarint(raw, pos)
        length, pos = decode_uvarint(raw, pos)
        end = pos + length
        if version != 1 or end > len(raw):
            raise CidError("not a binary CIDv1")
        # The multiformats spec (and go-cid) demand minimal varints: one CID, one encoding.
        if b"".join(map(encode_uvarint, (version, codec, code, length))) != bytes(raw[:pos]):
            raise CidError("not a binary CID: its varints are not minimally encoded")
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
        cid = CID.decode(value)
    except Exception as exc:  # multiformats raises several error types
        shown = value if isinstance(value, str) else value.hex()
        raise CidError(f"not a valid CID: {shown[:80]!r} ({_first_line(exc)})") from None
    return check_cid(cid)


def _too_long(code: int, length: int) -> str:
    if code == IDENTITY:
        return (
            f"identity CID too long: its digest (the inlined block) is {length} bytes, at most"
            f" {MAX_DIGEST_SIZE} are allowed; larger blocks need a real hash"
        )
    return f"CID digest too long: {length} bytes, at most {MAX_DIGEST_SIZE} are allowed"


def _raw_digest(cid: CID) -> memoryview:
    """The digest inside the CID's multihash. Not ``cid.raw_digest``: multiformats' unwrap
    raises and catches TypeErrors, whose tracebacks keep frames alive (see :func:`make_cid`)."""
    mh = cid.digest
    _, pos = decode_uvarint(mh)
    length, pos = decode_uvarint(mh, pos)
    return memoryview(mh)[pos : pos + length]


def check_cid(cid: CID) -> CID:
    """``cid`` itself if its digest is within :data:`MAX_DIGEST_SIZE`; else raise CidError.

    CIDs decoded by other code (dag-cbor's tag 42, multiformats) go through here before a
    store looks them up."""
    length = len(_raw_digest(cid))
    if length > MAX_DIGEST_SIZE:
        raise CidError(_too_long(cid.hashfun.code, length))
    return cid


def identity_data(cid: CID) -> bytes | None:
    """The block an identity CID inlines (its digest), or None for any other hash. Stores
    answer such CIDs from the CID itself and never write them (as Kubo's blockstore does)."""
    if cid.hashfun.code != IDENTITY:
        return None
    return bytes(_raw_digest(check_cid(cid)))


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
        inlined = identity_data(cid)
        if inlined is not None:
            if bytes(data) != inlined:
                raise BlockCorrupt(f"block bytes do not match identity CID {cid_to_str(cid)}")
            return cls(cid, data)
        hashfun = cid.hashfun.name
        if hashfun not in _HASHERS:
            raise BlockCorrupt(f"unsupported hash function {hashfun} in {cid_to_str(cid)}")
        if hash_bytes(data, hashfun) != cid.digest:
            raise BlockCorrupt(f"block bytes do not match {cid_to_str(cid)}")
        return cls(cid, data)

    def __repr__(self) -> str:
        return f"Block({cid_to_str(self.cid)}, {len(self.data)} bytes)"
