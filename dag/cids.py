"""CIDs and verified blocks.

A :class:`Block` can only be made by hashing its bytes (:meth:`Block.encode`) or by checking them
against a CID someone else gave us (:meth:`Block.checked`), so code that holds a ``Block`` never
has to wonder whether its bytes match its CID.
"""

from __future__ import annotations

from dataclasses import dataclass

from multiformats import CID, multihash

from .errors import BlockCorrupt, CidError

__all__ = ["CID", "DEFAULT_HASH", "Block", "cid_to_str", "multihash_key", "parse_cid"]

DEFAULT_HASH = "sha2-256"
SUPPORTED_HASHES = frozenset({"sha2-256", "sha2-512", "sha3-256", "sha3-512", "blake2b-256"})
SUPPORTED_CODECS = frozenset({"raw", "dag-pb", "dag-cbor"})


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
            return cls(CID("base58btc", 0, "dag-pb", multihash.digest(data, hashfun)), data)
        return cls(CID("base32", 1, codec, multihash.digest(data, hashfun)), data)

    @classmethod
    def checked(cls, cid: CID, data: bytes) -> Block:
        """Make a block from bytes received from elsewhere; raise BlockCorrupt unless they match."""
        hashfun = cid.hashfun.name
        if hashfun not in SUPPORTED_HASHES:
            raise BlockCorrupt(f"unsupported hash function {hashfun} in {cid_to_str(cid)}")
        if multihash.digest(data, hashfun) != cid.digest:
            raise BlockCorrupt(f"block bytes do not match {cid_to_str(cid)}")
        return cls(cid, data)

    def __repr__(self) -> str:
        return f"Block({cid_to_str(self.cid)}, {len(self.data)} bytes)"
