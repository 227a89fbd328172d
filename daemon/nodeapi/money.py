"""Money: signed usage records, settlement statements dividing a pool, and a payee's proof.

Amounts are integer minor units (cents); the CLI parses and prints decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services
from dag import cid_to_str, parse_cid
from provenance.settlement import Line, verify_line

__all__ = [
    "LocalMoney",
    "MoneyApi",
    "RemoteMoney",
    "Settlement",
    "StatementProof",
]


@dataclass(frozen=True)
class Settlement:
    """A signed statement's CID and its lines (payee, amount in minor units)."""

    statement: str
    lines: list[Line]

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement, "lines": [dict(line) for line in self.lines]}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Settlement:
        return cls(value["statement"], [dict(line) for line in value["lines"]])


@dataclass(frozen=True)
class StatementProof:
    """A payee's line of a statement with its Merkle proof, and whether it verifies."""

    statement: str
    root: str  # hex
    line: Line
    proof: dict[str, Any]  # provenance.merkle.MerkleProof.to_json()
    verified: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "root": self.root,
            "line": dict(self.line),
            "proof": self.proof,
            "verified": self.verified,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> StatementProof:
        return cls(
            value["statement"],
            value["root"],
            dict(value["line"]),
            value["proof"],
            value["verified"],
        )


class MoneyApi(Protocol):
    async def usage(
        self,
        subject: str,
        kind: str,
        count: int = 1,
        epoch: str | None = None,
        listener: str | None = None,
        source: str | None = None,
    ) -> str:
        """Sign and index a usage record (view, listen, like, boost); its CID."""
        ...

    async def settle(
        self,
        epoch: str,
        pool: int,
        currency: str = "EUR",
        policy: str = "splits",
        operators: Sequence[str] = (),
    ) -> Settlement:
        """Divide ``pool`` by the epoch's usage and sign a statement."""
        ...

    async def statement_proof(self, statement: str, payee: str) -> StatementProof:
        """``payee``'s line of ``statement`` with its inclusion proof."""
        ...


class LocalMoney:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def usage(
        self,
        subject: str,
        kind: str,
        count: int = 1,
        epoch: str | None = None,
        listener: str | None = None,
        source: str | None = None,
    ) -> str:
        money = await self._services.money()
        cid = await money.record_usage(subject, kind, count, epoch, listener, source)
        return cid_to_str(cid)

    async def settle(
        self,
        epoch: str,
        pool: int,
        currency: str = "EUR",
        policy: str = "splits",
        operators: Sequence[str] = (),
    ) -> Settlement:
        money = await self._services.money()
        cid, lines = await money.settle(epoch, pool, currency, policy, operators)
        return Settlement(cid_to_str(cid), lines)

    async def statement_proof(self, statement: str, payee: str) -> StatementProof:
        money = await self._services.money()
        record, _ = await money.statement(statement)
        line, proof = await money.statement_proof(statement, payee)
        return StatementProof(
            cid_to_str(parse_cid(statement)),
            record["root"].hex(),
            line,
            proof.to_json(),
            verify_line(record, line, proof),
        )


class RemoteMoney:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def usage(
        self,
        subject: str,
        kind: str,
        count: int = 1,
        epoch: str | None = None,
        listener: str | None = None,
        source: str | None = None,
    ) -> str:
        body = {
            "subject": subject,
            "kind": kind,
            "count": count,
            "epoch": epoch,
            "listener": listener,
            "source": source,
        }
        return str((await self._caller.call("POST", "/api/v1/money/usage", json=body))["usage"])

    async def settle(
        self,
        epoch: str,
        pool: int,
        currency: str = "EUR",
        policy: str = "splits",
        operators: Sequence[str] = (),
    ) -> Settlement:
        body = {
            "epoch": epoch,
            "pool": pool,
            "currency": currency,
            "policy": policy,
            "operators": list(operators),
        }
        found = await self._caller.call("POST", "/api/v1/money/settlements", json=body)
        return Settlement.from_json(found)

    async def statement_proof(self, statement: str, payee: str) -> StatementProof:
        found = await self._caller.call(
            "GET", f"/api/v1/money/statements/{statement}/proof", params={"payee": payee}
        )
        return StatementProof.from_json(found)
