"""Merkle trees with inclusion proofs, as in Certificate Transparency (RFC 6962, section 2.1).

Leaves are hashed as ``sha256(0x00 || data)`` and interior nodes as
``sha256(0x01 || left || right)``, so a leaf can never pass for a node (second-preimage safety).
A tree of ``n`` leaves splits at the largest power of two below ``n``; no leaf is duplicated,
so a proof shows exactly one position. Settlement statements commit to their payee lines this
way, and anchoring commits a batch of claims and statements to one root that is timestamped.

Hand-written because it is twenty lines and the PyPI Merkle packages either pad with
duplicated leaves (which lets two different lists share a root) or lack proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MerkleProof", "leaf_hash", "merkle_proof", "merkle_root", "verify_proof"]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(_root(hashes[:k]), _root(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over the leaves' data (at least one leaf)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _root([leaf_hash(d) for d in leaves])


@dataclass(frozen=True)
class MerkleProof:
    index: int
    size: int
    path: tuple[bytes, ...]  # sibling hashes, from the leaf up

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "size": self.size, "path": [h.hex() for h in self.path]}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> MerkleProof:
        path = value["path"]
        if not isinstance(path, list):
            raise ValueError("proof path must be a list of hex strings")
        return cls(int(value["index"]), int(value["size"]), tuple(bytes.fromhex(h) for h in path))  # type: ignore[call-overload]


def merkle_proof(leaves: Sequence[bytes], index: int) -> MerkleProof:
    """The inclusion proof of ``leaves[index]``."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    hashes = [leaf_hash(d) for d in leaves]
    path: list[bytes] = []

    def walk(part: Sequence[bytes], i: int) -> None:
        if len(part) == 1:
            return
        k = _split(len(part))
        if i < k:
            walk(part[:k], i)
            path.append(_root(part[k:]))
        else:
            walk(part[k:], i - k)
            path.append(_root(part[:k]))

    walk(hashes, index)
    return MerkleProof(index, len(leaves), tuple(path))


def verify_proof(root: bytes, data: bytes, proof: MerkleProof) -> bool:
    """Does ``data`` sit at ``proof.index`` of a tree of ``proof.size`` leaves with ``root``?"""
    if not 0 <= proof.index < proof.size:
        return False
    # Rebuild the sequence of left/right decisions from the top, then fold from the leaf.
    sides: list[bool] = []  # True: our subtree is the left one
    index, size = proof.index, proof.size
    while size > 1:
        k = _split(size)
        if index < k:
            sides.append(True)
            size = k
        else:
            sides.append(False)
            index, size = index - k, size - k
    if len(sides) != len(proof.path):
        return False
    value = leaf_hash(data)
    for sibling, left in zip(proof.path, reversed(sides), strict=True):
        value = _node(value, sibling) if left else _node(sibling, value)
    return value == root
