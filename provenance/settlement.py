"""Settlement statements: a signed list of who is paid what for an epoch, with a proof per payee.

A statement's payee lines are ``{"payee": str, "amount": int}`` maps sorted by payee. The
lines live in their own DAG-CBOR block (the ``statement`` record's ``lines`` links to it) and
the record's ``root`` is the Merkle root (:mod:`provenance.merkle`, RFC 6962 hashing) over the
DAG-CBOR bytes of each line, in order. A payee can be handed their line and its inclusion
proof alone and check them against the signed record: :func:`verify_line`. Changing a line's
payee or amount changes its bytes, so its proof no longer leads to the root.

Pure: builds records and blocks, stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dag import CID, Block, decode_dagcbor, encode_dagcbor, record_block
from dag.errors import DagError

from .errors import ProvenanceError
from .merkle import MerkleProof, merkle_proof, merkle_root, verify_proof
from .record_builders import utc_timestamp
from .schemas import validate_record

__all__ = [
    "SettlementError",
    "Line",
    "decode_lines",
    "lines_cid",
    "line_bytes",
    "make_lines",
    "make_statement",
    "proof_for",
    "verify_line",
]

Line = dict[str, Any]  # {"payee": str, "amount": int}


class SettlementError(ProvenanceError, ValueError):
    """A statement's lines do not add up, are malformed, or name no such payee."""


def _check_line(line: Any, where: str) -> Line:
    if (
        not isinstance(line, dict)
        or set(line) != {"payee", "amount"}
        or not isinstance(line["payee"], str)
        or not line["payee"]
        or isinstance(line["amount"], bool)
        or not isinstance(line["amount"], int)
        or line["amount"] < 0
    ):
        raise SettlementError(f"{where}: a line is {{payee: text, amount: whole number >= 0}}")
    return line


def make_lines(payouts: Mapping[str, int]) -> list[Line]:
    """The statement lines of ``payouts``, sorted by payee."""
    lines = [{"payee": payee, "amount": amount} for payee, amount in sorted(payouts.items())]
    for i, line in enumerate(lines):
        _check_line(line, f"line {i}")
    return lines


def line_bytes(line: Line) -> bytes:
    """What a line's Merkle leaf commits to: its DAG-CBOR bytes."""
    return encode_dagcbor(_check_line(line, "line"))


def decode_lines(data: bytes) -> list[Line]:
    """The lines held by a statement's ``lines`` block, checked."""
    try:
        value = decode_dagcbor(data)
    except DagError as exc:
        raise SettlementError(f"statement lines block: {exc}") from None
    if not isinstance(value, list):
        raise SettlementError("statement lines block does not hold a list")
    return [_check_line(line, f"line {i}") for i, line in enumerate(value)]


def make_statement(
    epoch: str,
    policy: str,
    currency: str,
    pool: int,
    payouts: Mapping[str, int],
    *,
    created: str | None = None,
) -> tuple[dict[str, Any], Block]:
    """An unsigned ``statement`` record and the block holding its lines.

    Refuses payouts that do not sum to ``pool`` exactly, and an empty statement (a Merkle
    tree needs a leaf: there is nothing to settle).
    """
    lines = make_lines(payouts)
    total = sum(line["amount"] for line in lines)
    if total != pool:
        raise SettlementError(f"payouts sum to {total} but the pool is {pool}")
    if not lines:
        raise SettlementError(f"nothing to settle for {epoch}: no payee lines")
    block = record_block(lines)
    record: dict[str, Any] = {
        "type": "statement",
        "version": 1,
        "epoch": epoch,
        "policy": policy,
        "currency": currency,
        "pool": pool,
        "lines": block.cid,
        "count": len(lines),
        "root": merkle_root([line_bytes(line) for line in lines]),
        "created": created or utc_timestamp(),
    }
    validate_record(record)
    return record, block


def proof_for(lines: Sequence[Line], payee: str) -> MerkleProof:
    """The inclusion proof of ``payee``'s line."""
    for index, line in enumerate(lines):
        if line["payee"] == payee:
            return merkle_proof([line_bytes(x) for x in lines], index)
    raise SettlementError(f"no line for payee {payee!r} in this statement")


def verify_line(statement: Mapping[str, Any], line: Line, proof: MerkleProof) -> bool:
    """Is ``line`` the statement's line at ``proof.index``? (Checks the record's ``root`` and
    ``count``; the caller checks the record's signature.)"""
    try:
        data = line_bytes(line)
    except SettlementError:
        return False
    root, count = statement.get("root"), statement.get("count")
    if not isinstance(root, bytes) or proof.size != count:
        return False
    return verify_proof(root, data, proof)


def lines_cid(statement: Mapping[str, Any]) -> CID:
    """The CID of the block holding a statement's lines."""
    cid = statement.get("lines")
    if not isinstance(cid, CID):
        raise SettlementError("statement has no 'lines' link")
    return cid
