"""The node's money: usage records and settlement statements.

- :meth:`MoneyService.record_usage` signs a ``usage`` record, stores it (pinned) and indexes it
  in its own SQLite table ``usage`` (in the node's index file).
- :meth:`MoneyService.settle` counts an epoch's usage, divides the pool by the ``splits`` or
  ``9ten`` policy (work graphs from :mod:`daemon.core.money.graph`), and signs a ``statement``
  whose lines block and record are stored and pinned; :meth:`MoneyService.statement_proof`
  hands a payee their line and Merkle proof.

Usage of a month-epoch (``2026-11``) includes the usage recorded under its days
(``2026-11-05``). Subjects nobody can be paid for (no claim, no provenance, no known owner) are
left out of a settlement with a warning rather than blocking it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

import dag
from daemon.core.money.graph import (
    OwnerLookup,
    Record,
    RecordLookup,
    WorkSources,
    build_work,
    call_lookup,
)
from daemon.core.money.tables import USAGE_KINDS, MoneyDb
from dag import CID, Blockstore, cid_to_str, parse_cid
from provenance import (
    Identity,
    RecordError,
    sign_record,
    utc_timestamp,
    validate_record,
    verify_signed,
)
from provenance.merkle import MerkleProof
from provenance.settlement import (
    Line,
    SettlementError,
    decode_lines,
    lines_cid,
    make_statement,
    proof_for,
    verify_line,
)
from provenance.splits import SplitError, Work, allocate, distribute_pool, ninety_ten

if TYPE_CHECKING:
    from daemon.core.index import Index

__all__ = ["MoneyService", "current_epoch", "open_money"]

log = logging.getLogger("artdag.money")

POLICIES = ("splits", "9ten")
_EPOCH = re.compile(r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?")

T = TypeVar("T")
Announce = Callable[[CID], Awaitable[None]]
ReadRecord = Callable[[CID | str], Awaitable[Record]]


def _check_epoch(epoch: str) -> str:
    if not isinstance(epoch, str) or not _EPOCH.fullmatch(epoch):
        raise ValueError(f"epoch {epoch!r}: write it as YYYY-MM or YYYY-MM-DD")
    return epoch


def current_epoch() -> str:
    """This month, UTC: ``2026-11``."""
    return utc_timestamp()[:7]


class MoneyService:
    """Usage and statements signed by ``identity``, in ``store`` and ``index``; ``announce``
    appends a statement to the creator repo, ``read_record`` reads a stored record verified.
    ``find_claim`` is the claims service's ranking (by default the earliest indexed claim)."""

    def __init__(
        self,
        store: Blockstore,
        index: Index,
        identity: Identity,
        *,
        index_path: Path,
        announce: Announce,
        read_record: ReadRecord,
        find_claim: RecordLookup | None = None,
        find_provenance: RecordLookup | None = None,
        owner_of: OwnerLookup | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.identity = identity
        self.did = identity.did
        self.announce = announce
        self.read_record = read_record
        self.db = MoneyDb(index_path)
        self.sources = WorkSources(
            find_claim=find_claim or self._find_claim,
            find_provenance=find_provenance or self._find_provenance,
            owner_of=owner_of or self._owner_of,
            load_record=self.load_record,
        )

    def close(self) -> None:
        self.db.close()

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args)

    # -- default record lookups (the lead may pass better ones) ----------------------------
    async def load_record(self, cid: CID) -> Record | None:
        """A record from the store, checked (signature when signed, else schema); None when
        absent or invalid (a bad record upstream must not stop a settlement)."""
        try:
            value = dag.decode_dagcbor(await self.store.get(cid))
            if not isinstance(value, dict):
                raise RecordError("not a map")
            if "sig" in value:
                verify_signed(value)
            else:
                validate_record(value)
        except dag.BlockNotFound:
            return None
        except (dag.DagError, RecordError, ValueError) as exc:
            log.warning("record %s is unusable: %s", cid_to_str(cid), exc)
            return None
        return value

    async def _first_valid(self, type_: str, subject: CID) -> Record | None:
        for cid, _ in await self._db(self.db.record_cids, type_, cid_to_str(subject)):
            record = await self.load_record(parse_cid(cid))
            if record is not None and record.get("type") == type_:
                return record
        return None

    async def _find_claim(self, subject: CID) -> Record | None:
        """The earliest-created valid claim indexed for ``subject`` (a stand-in for the claims
        service's anchored ranking)."""
        return await self._first_valid("claim", subject)

    async def _find_provenance(self, subject: CID) -> Record | None:
        key = cid_to_str(subject)
        rendered = await self._db(self.db.render_provenance, key)
        if rendered:
            record = await self.load_record(parse_cid(rendered))
            if record is not None and record.get("output") == subject:
                return record
        return await self._first_valid("provenance", subject)

    async def _owner_of(self, cid: CID) -> str | None:
        claim = await call_lookup(self.sources.find_claim, cid)
        if claim is not None:
            return str(claim["signer"])
        signer = await self._db(self.db.asset_signer, cid_to_str(cid))
        if signer:
            return signer
        asset = await self._first_valid("asset", cid)
        return str(asset["signer"]) if asset else None

    # -- usage ------------------------------------------------------------------------------
    async def record_usage(
        self,
        subject: CID | str,
        kind: str,
        count: int = 1,
        epoch: str | None = None,
        listener: str | None = None,
        source: str | None = None,
    ) -> CID:
        """Sign, store (pinned) and index a ``usage`` record; its CID."""
        if kind not in USAGE_KINDS:
            raise ValueError(f"usage kind {kind!r}: one of {', '.join(USAGE_KINDS)}")
        record: Record = {
            "type": "usage",
            "version": 1,
            "subject": parse_cid(subject),
            "kind": kind,
            "count": count,
            "epoch": _check_epoch(epoch or current_epoch()),
            "created": utc_timestamp(),
        }
        if listener is not None:
            record["listener"] = listener
        if source is not None:
            record["source"] = source
        validate_record(record)
        signed = sign_record(record, self.identity)
        block = dag.record_block(signed)
        await self.store.put(block)
        await self.store.flush()
        await self.store.pin(block.cid)
        row = {
            "cid": cid_to_str(block.cid),
            "subject": cid_to_str(record["subject"]),
            "kind": kind,
            "count": count,
            "epoch": record["epoch"],
            "listener": listener,
            "signer": self.did,
            "created": record["created"],
        }
        await self._db(self.db.put_usage, row)
        return block.cid

    async def usage_counts(self, epoch: str, kinds: Sequence[str] | None = None) -> dict[str, int]:
        """Subject -> summed count of the epoch's usage (all kinds unless ``kinds``)."""
        return await self._db(self.db.counts, _check_epoch(epoch), kinds)

    async def build_work(self, subject: CID | str) -> Work:
        return await build_work(parse_cid(subject), self.sources)

    # -- settlement -------------------------------------------------------------------------
    async def payouts(
        self, epoch: str, pool: int, policy: str = "splits", operators: Sequence[str] = ()
    ) -> dict[str, int]:
        """Who gets what of ``pool`` for ``epoch`` under ``policy`` (nothing is written)."""
        _check_epoch(epoch)
        if policy == "splits":
            counts = await self.usage_counts(epoch)
            works: dict[str, Work] = {}
            for subject in counts:
                work = await self.build_work(subject)
                if work.claimant is None and not any(work.roles.values()):
                    log.warning("usage of %s left out: nobody to pay for it", subject)
                    continue
                works[subject] = work
            usage = {s: n for s, n in counts.items() if s in works}
            return distribute_pool(pool, usage, works)
        if policy == "9ten":
            listens = await self._db(self.db.listens, epoch)
            by_artist: dict[str, dict[str, int]] = {}
            artists: dict[str, str | None] = {}
            for listener, subjects in listens.items():
                for subject, n in subjects.items():
                    if subject not in artists:
                        artists[subject] = await call_lookup(
                            self.sources.owner_of, parse_cid(subject)
                        )
                    artist = artists[subject]
                    if artist is None:
                        log.warning("listens of %s left out: no known artist", subject)
                        continue
                    mine = by_artist.setdefault(listener, {})
                    mine[artist] = mine.get(artist, 0) + n
            if not by_artist:
                raise SplitError(f"no listens with a known listener and artist in {epoch}")
            pools = allocate(pool, [(listener, 1) for listener in sorted(by_artist)])
            return ninety_ten(pools, by_artist, list(operators) or [self.did])
        raise ValueError(f"policy {policy!r}: one of {', '.join(POLICIES)}")

    async def settle(
        self,
        epoch: str,
        pool: int,
        currency: str = "EUR",
        policy: str = "splits",
        operators: Sequence[str] = (),
    ) -> tuple[CID, list[Line]]:
        """Divide ``pool`` and write the signed statement (pinned, indexed, announced)."""
        payouts = await self.payouts(epoch, pool, policy, operators)
        record, lines_block = make_statement(epoch, policy, currency, pool, payouts)
        signed = sign_record(record, self.identity)
        block = dag.record_block(signed)
        store = self.store
        await store.put_many([lines_block, block])
        await store.flush()
        await store.pin(lines_block.cid)
        await store.pin(block.cid)
        key = cid_to_str(block.cid)
        await self._db(
            self.db.put_statement,
            {
                "cid": key,
                "epoch": epoch,
                "policy": policy,
                "currency": currency,
                "pool": pool,
                "count": record["count"],
                "lines": cid_to_str(lines_block.cid),
                "created": record["created"],
            },
        )
        await self._db(self.index.put_record, key, "statement", self.did, record["created"], "")
        await self.announce(block.cid)
        return block.cid, decode_lines(lines_block.data)

    async def statement(self, statement_cid: CID | str) -> tuple[Record, list[Line]]:
        """A stored statement (signature checked) and its lines."""
        record = await self.read_record(statement_cid)
        if record.get("type") != "statement":
            raise SettlementError(f"{cid_to_str(parse_cid(statement_cid))} is not a statement")
        data = await self.store.get(lines_cid(record))
        return record, decode_lines(data)

    async def statement_proof(
        self, statement_cid: CID | str, payee: str
    ) -> tuple[Line, MerkleProof]:
        """``payee``'s line of a statement and its inclusion proof (checked before returned)."""
        record, lines = await self.statement(statement_cid)
        proof = proof_for(lines, payee)
        line = lines[proof.index]
        if not verify_line(record, line, proof):
            raise SettlementError("statement lines do not match its Merkle root")
        return line, proof


@asynccontextmanager
async def open_money(
    store: Blockstore, index: Index, identity: Identity, **kwargs: Any
) -> AsyncIterator[MoneyService]:
    """The money service (``kwargs``: those of :class:`MoneyService`), closed on exit."""
    service = MoneyService(store, index, identity, **kwargs)
    try:
        yield service
    finally:
        service.close()
