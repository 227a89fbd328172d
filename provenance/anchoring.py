"""OpenTimestamps anchoring, sans I/O: batch record CIDs into a Merkle root, timestamp the root.

Theory of operation. A batch of record CIDs (claims, statements) becomes the leaves of a
:mod:`provenance.merkle` tree (each leaf is the CID's binary form). The 32-byte root is the
"file digest" of an OpenTimestamps ``DetachedTimestampFile`` (hash op sha256, as ``ots stamp``
would write for a file whose sha256 is the root). Like the real client we append a random
16-byte nonce and hash again, so calendars only ever see ``sha256(root || nonce)`` (the
*commitment*), never the root. Calendar answers (``POST /digest``, ``GET /timestamp/<hex>``) are
serialized ``Timestamp`` trees starting at the message we asked about; :func:`merge_answer`
grafts them onto ours. A proof is complete once a path ends in a Bitcoin block header
attestation: the message there must equal the merkle root of the block header at that height.

Everything here works on bytes and the ``opentimestamps`` library's objects; the HTTP side lives
in :mod:`daemon.core.ownership.anchors`. Serialization, op semantics and attestation types are the
library's (consensus-critical, so never re-implemented here); what is hand-written is only the
glue: finding paths through the proof tree and checking an 80-byte header, which the library
leaves to its callers (it expects a bitcoind RPC proxy).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bitcoin.core import CBlockHeader, b2lx
from multiformats import CID
from opentimestamps.core.notary import (
    BitcoinBlockHeaderAttestation,
    PendingAttestation,
    TimeAttestation,
)
from opentimestamps.core.op import Op, OpAppend, OpSHA256
from opentimestamps.core.serialize import (
    BytesDeserializationContext,
    BytesSerializationContext,
    DeserializationError,
)
from opentimestamps.core.timestamp import DetachedTimestampFile, Timestamp

from .errors import ProvenanceError
from .merkle import MerkleProof, leaf_hash, merkle_proof, merkle_root, verify_proof

__all__ = [
    "AnchorError",
    "Attestation",
    "HeaderVerdict",
    "LeafPath",
    "MerkleStep",
    "OtsStep",
    "attestations",
    "batch_root",
    "block_hash",
    "commitment_of",
    "is_complete",
    "leaf_path",
    "merge_answer",
    "new_timestamp",
    "ots_path",
    "parse_answer",
    "parse_ots",
    "pending",
    "serialize_ots",
    "verify_header",
    "verify_leaf",
]

HEADER_SIZE = 80
NONCE_SIZE = 16


class AnchorError(ProvenanceError, ValueError):
    """An anchoring batch, a calendar answer, a ``.ots`` proof or a block header is unusable."""


# -- the batch ---------------------------------------------------------------------------------


def _leaf_bytes(cids: Sequence[CID]) -> list[bytes]:
    return [bytes(c) for c in cids]


def batch_root(cids: Sequence[CID]) -> bytes:
    """The Merkle root over the CIDs' binary forms, in the order given."""
    if not cids:
        raise AnchorError("an anchoring batch needs at least one record CID")
    if len(set(cids)) != len(cids):
        raise AnchorError("an anchoring batch lists the same CID twice")
    return merkle_root(_leaf_bytes(cids))


@dataclass(frozen=True)
class MerkleStep:
    """One level up the tree: the sibling hash, which side it is on, and the hash it makes."""

    sibling: bytes
    sibling_side: str  # "left" | "right"
    result: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "sibling": self.sibling.hex(),
            "side": self.sibling_side,
            "result": self.result.hex(),
        }


@dataclass(frozen=True)
class LeafPath:
    """The path from one leaf (a record CID) to the batch root, ready to print or check."""

    leaf: CID
    leaf_hash: bytes
    proof: MerkleProof
    steps: tuple[MerkleStep, ...]
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf": str(self.leaf),
            "leaf_hash": self.leaf_hash.hex(),
            "index": self.proof.index,
            "size": self.proof.size,
            "steps": [s.to_json() for s in self.steps],
            "root": self.root.hex(),
        }


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def leaf_path(cids: Sequence[CID], cid: CID) -> LeafPath:
    """The inclusion path of ``cid`` in the batch ``cids`` (the ``provenance.merkle`` proof plus
    each intermediate hash, so a CLI can show the climb)."""
    try:
        index = list(cids).index(cid)
    except ValueError:
        raise AnchorError(f"{cid} is not a leaf of this anchoring batch") from None
    leaves = _leaf_bytes(cids)
    proof = merkle_proof(leaves, index)
    # Sibling sides from the top down (the split rule of RFC 6962), then fold from the leaf.
    sides: list[bool] = []  # True: our subtree is the left one
    i, size = index, len(leaves)
    while size > 1:
        k = _split(size)
        if i < k:
            sides.append(True)
            size = k
        else:
            sides.append(False)
            i, size = i - k, size - k
    value = leaf_hash(leaves[index])
    steps = []
    for sibling, ours_left in zip(proof.path, reversed(sides), strict=True):
        pair = value + sibling if ours_left else sibling + value
        value = hashlib.sha256(b"\x01" + pair).digest()
        steps.append(MerkleStep(sibling, "right" if ours_left else "left", value))
    return LeafPath(cid, leaf_hash(leaves[index]), proof, tuple(steps), value)


def verify_leaf(root: bytes, cid: CID, proof: MerkleProof) -> bool:
    """Does ``cid`` sit in the batch with this root at the proof's position?"""
    return verify_proof(root, bytes(cid), proof)


# -- the timestamp proof -----------------------------------------------------------------------


def new_timestamp(root: bytes, nonce: bytes | None = None) -> DetachedTimestampFile:
    """A fresh proof for ``root`` (no attestation yet): root -> append nonce -> sha256.
    The result of the sha256 is the commitment to submit to calendars (:func:`commitment_of`)."""
    if len(root) != 32:
        raise AnchorError(f"a batch root is 32 bytes, got {len(root)}")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    ots = DetachedTimestampFile(OpSHA256(), Timestamp(root))
    ots.timestamp.ops.add(OpAppend(nonce)).ops.add(OpSHA256())
    return ots


def commitment_of(ots: DetachedTimestampFile) -> bytes:
    """The digest submitted to calendars: the end of the nonce path of :func:`new_timestamp`."""
    stamp: Timestamp = ots.timestamp
    for op, sub in stamp.ops.items():
        if isinstance(op, OpAppend) and len(op[0]) == NONCE_SIZE:
            for op2, sub2 in sub.ops.items():
                if isinstance(op2, OpSHA256):
                    return bytes(sub2.msg)
    raise AnchorError("this proof has no nonce commitment (not made by new_timestamp)")


def _walk(stamp: Timestamp) -> Iterator[Timestamp]:
    yield stamp
    for sub in stamp.ops.values():
        yield from _walk(sub)


def parse_answer(data: bytes, msg: bytes) -> Timestamp:
    """A calendar's answer: a serialized timestamp tree starting at ``msg``."""
    try:
        ctx = BytesDeserializationContext(data)
        stamp = Timestamp.deserialize(ctx, msg)
        ctx.assert_eof()
    except (DeserializationError, ValueError, TypeError) as exc:
        raise AnchorError(f"calendar answer is not an OpenTimestamps timestamp: {exc}") from None
    return stamp


def merge_answer(ots: DetachedTimestampFile, msg: bytes, answer: bytes | Timestamp) -> int:
    """Graft a calendar answer for ``msg`` onto every node of ``ots`` with that message.
    Returns how many attestations are new."""
    stamp = parse_answer(answer, msg) if isinstance(answer, bytes) else answer
    before = {a for _m, a in ots.timestamp.all_attestations()}
    targets = [s for s in _walk(ots.timestamp) if s.msg == msg]
    if not targets:
        raise AnchorError(f"no step of this proof has the message {msg.hex()}")
    for target in targets:
        target.merge(stamp)
    after = {a for _m, a in ots.timestamp.all_attestations()}
    return len(after - before)


def serialize_ots(ots: DetachedTimestampFile) -> bytes:
    """The ``.ots`` file bytes (what ``ots info`` reads)."""
    ctx = BytesSerializationContext()
    try:
        ots.serialize(ctx)
    except ValueError as exc:
        raise AnchorError(f"cannot serialize proof: {exc}") from None
    return bytes(ctx.getbytes())


def parse_ots(data: bytes) -> DetachedTimestampFile:
    try:
        return DetachedTimestampFile.deserialize(BytesDeserializationContext(data))
    except (DeserializationError, ValueError, TypeError) as exc:
        raise AnchorError(f"not a valid .ots proof: {exc}") from None


# -- attestations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attestation:
    kind: str  # "pending" | "bitcoin" | "other"
    msg: bytes  # the message the attestation is about (for bitcoin: the block's merkle root)
    calendar: str | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "msg": self.msg.hex(),
            "calendar": self.calendar,
            "height": self.height,
        }


def _describe(msg: bytes, att: TimeAttestation) -> Attestation:
    if isinstance(att, PendingAttestation):
        return Attestation("pending", msg, calendar=att.uri)
    if isinstance(att, BitcoinBlockHeaderAttestation):
        return Attestation("bitcoin", msg, height=att.height)
    return Attestation("other", msg)


def attestations(ots: DetachedTimestampFile) -> list[Attestation]:
    """Every attestation in the proof: Bitcoin ones first (lowest height first), then pending."""
    found = {_describe(bytes(m), a) for m, a in ots.timestamp.all_attestations()}
    order = {"bitcoin": 0, "pending": 1, "other": 2}
    return sorted(found, key=lambda a: (order[a.kind], a.height or 0, a.calendar or "", a.msg))


def pending(ots: DetachedTimestampFile) -> list[Attestation]:
    return [a for a in attestations(ots) if a.kind == "pending"]


def is_complete(ots: DetachedTimestampFile) -> bool:
    return any(a.kind == "bitcoin" for a in attestations(ots))


@dataclass(frozen=True)
class OtsStep:
    op: str  # "sha256", "append", "prepend", ...
    argument: bytes | None
    result: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "argument": None if self.argument is None else self.argument.hex(),
            "result": self.result.hex(),
        }


def _find_path(stamp: Timestamp, target: Attestation) -> list[OtsStep] | None:
    if any(_describe(stamp.msg, a) == target for a in stamp.attestations):
        return []
    for op, sub in sorted(stamp.ops.items(), key=lambda item: item[0]):
        rest = _find_path(sub, target)
        if rest is not None:
            argument = bytes(op[0]) if len(op) else None
            return [OtsStep(_op_name(op), argument, bytes(sub.msg)), *rest]
    return None


def _op_name(op: Op) -> str:
    return str(getattr(op, "TAG_NAME", type(op).__name__))


def ots_path(ots: DetachedTimestampFile, target: Attestation) -> list[OtsStep]:
    """The operations from the batch root to ``target`` (each with its result)."""
    path = _find_path(ots.timestamp, target)
    if path is None:
        raise AnchorError("that attestation is not in this proof")
    return path


# -- Bitcoin block headers ---------------------------------------------------------------------


def block_hash(header: bytes) -> str:
    """The block hash of an 80-byte header, as block explorers print it (byte-reversed hex)."""
    return str(b2lx(hashlib.sha256(hashlib.sha256(header).digest()).digest()))


def _meets_target(header: bytes, bits: int) -> bool:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000 or mantissa == 0:
        return False
    target = mantissa << (8 * (exponent - 3)) if exponent >= 3 else mantissa >> (8 * (3 - exponent))
    digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
    return int.from_bytes(digest, "little") <= target


@dataclass(frozen=True)
class HeaderVerdict:
    ok: bool
    reason: str
    height: int | None = None
    block_time: int | None = None
    block_hash: str | None = None
    merkle_root: str | None = None  # as explorers print it (byte-reversed)


def verify_header(
    ots: DetachedTimestampFile,
    header: bytes,
    *,
    height: int | None = None,
    expected_hash: str | None = None,
) -> HeaderVerdict:
    """Check the proof's Bitcoin attestation (at ``height``, or the lowest one) against a raw
    80-byte block header: the header must hash to ``expected_hash`` when one is given (the hash
    the header source names for that height), meet its own proof-of-work target, and carry the
    attested message as its merkle root. Returns the block time on success."""
    bitcoin = [a for a in attestations(ots) if a.kind == "bitcoin"]
    if height is not None:
        bitcoin = [a for a in bitcoin if a.height == height]
    if not bitcoin:
        where = "" if height is None else f" at height {height}"
        return HeaderVerdict(False, f"the proof has no Bitcoin attestation{where} yet")
    att = bitcoin[0]
    if len(header) != HEADER_SIZE:
        return HeaderVerdict(
            False, f"a block header is {HEADER_SIZE} bytes, got {len(header)}", att.height
        )
    parsed = CBlockHeader.deserialize(header)
    hash_hex = block_hash(header)
    root_hex = str(b2lx(parsed.hashMerkleRoot))

    def fail(reason: str) -> HeaderVerdict:
        return HeaderVerdict(False, reason, att.height, None, hash_hex, root_hex)

    if expected_hash is not None and hash_hex != expected_hash.lower():
        return fail(f"header hashes to {hash_hex}, but block {att.height} is {expected_hash}")
    if not _meets_target(header, parsed.nBits):
        return fail(f"header {hash_hex} does not meet its own proof-of-work target")
    if parsed.hashMerkleRoot != att.msg:
        return fail(
            f"block {att.height} has merkle root {root_hex}, "
            f"but the proof commits to {b2lx(att.msg)}"
        )
    ok = f"Bitcoin block {att.height} attests the batch root"
    return HeaderVerdict(True, ok, att.height, int(parsed.nTime), hash_hex, root_hex)
