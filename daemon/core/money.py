"""The node's money: usage records, work graphs read from records, and settlement statements.

The adapter between the pure arithmetic (:mod:`provenance.splits`,
:mod:`provenance.settlement`) and the node's store and index:

- :meth:`MoneyService.record_usage` signs a ``usage`` record, stores it (pinned) and indexes it
  in its own SQLite table ``usage`` (in the node's index file).
- :func:`build_work` turns a subject into a :class:`~provenance.splits.Work` by reading
  records through four small callbacks (:class:`WorkSources`), so tests can hand in records
  from a dict and the lead can wire in the claims service's ranking. Per role: ``footage`` ->
  each input (a derived :class:`Work` if the input has a claim or a provenance record, else
  the input's owner), ``effects`` -> each effect record's ``author``, ``recipe`` -> the recipe
  record's ``author`` (else its signer), ``infrastructure`` -> the provenance record's
  ``infrastructure`` dids and its ``renderer``. The work's claimant (the claim's signer, else
  the subject's owner, else the provenance signer) is paid the roles nobody fills.
- :meth:`MoneyService.settle` counts an epoch's usage, divides the pool by the ``splits`` or
  ``9ten`` policy, and signs a ``statement`` whose lines block and record are stored and
  pinned; :meth:`MoneyService.statement_proof` hands a payee their line and Merkle proof.

Usage of a month-epoch (``2026-11``) includes the usage recorded under its days
(``2026-11-05``). Subjects nobody can be paid for (no claim, no provenance, no known owner) are
left out of a settlement with a warning rather than blocking it.
"""

from __future__ import annotations

import inspect
import logging
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

import dag
from dag import CID, cid_to_str, parse_cid
from provenance import RecordError, sign_record, utc_timestamp, validate_record, verify_signed
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
from provenance.splits import (
    DEFAULT_SPLIT,
    MAX_DEPTH,
    Split,
    SplitError,
    Work,
    allocate,
    distribute_pool,
    ninety_ten,
)

if TYPE_CHECKING:
    from daemon.core.node import Node

__all__ = [
    "MoneyService",
    "WorkSources",
    "build_work",
    "open_money",
]

log = logging.getLogger("artdag.money")

USAGE_KINDS = ("view", "listen", "like", "boost")
POLICIES = ("splits", "9ten")
_EPOCH = re.compile(r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?")

T = TypeVar("T")
Record = dict[str, Any]
RecordLookup = Callable[[CID], Awaitable[Record | None] | Record | None]
OwnerLookup = Callable[[CID], Awaitable[str | None] | str | None]


async def _call(fn: Callable[[CID], Any], cid: CID) -> Any:
    value = fn(cid)
    return await value if inspect.isawaitable(value) else value


@dataclass(frozen=True)
class WorkSources:
    """Where :func:`build_work` reads records. Each callback may be sync or async.

    - ``find_claim(subject)``: the claim that governs the subject (the winning one), or None.
    - ``find_provenance(subject)``: the provenance record whose ``output`` is the subject.
    - ``owner_of(cid)``: who owns a plain input (claimant, else the asset record's signer).
    - ``load_record(cid)``: any record by CID (effects, recipes, provenance named by claims).
    """

    find_claim: RecordLookup
    find_provenance: RecordLookup
    owner_of: OwnerLookup
    load_record: RecordLookup


# -- work graphs from records ---------------------------------------------------------------
async def build_work(subject: CID, sources: WorkSources) -> Work:
    """The work graph of ``subject``: its split, claimant and who fills each role.

    A subject with neither claim nor provenance is a work with the default split whose every
    role falls to its owner (the claimant).
    """
    found = await _GraphReader(sources).node(subject, ())
    if isinstance(found, Work):
        return found
    return Work(cid_to_str(subject), DEFAULT_SPLIT, {}, claimant=found)


class _GraphReader:
    def __init__(self, sources: WorkSources) -> None:
        self.sources = sources
        self.memo: dict[str, Work | str | None] = {}

    async def node(self, cid: CID, path: tuple[str, ...]) -> Work | str | None:
        """A derived :class:`Work`, or the owner of a plain input (None if unknown)."""
        key = cid_to_str(cid)
        if key in self.memo:
            return self.memo[key]
        if key in path:
            raise SplitError(f"work graph has a cycle: {' -> '.join([*path, key])}")
        if len(path) >= MAX_DEPTH:
            raise SplitError(f"work {key} lies deeper than {MAX_DEPTH} derived works")
        s = self.sources
        claim = await _call(s.find_claim, cid)
        provenance = None
        if claim is not None and isinstance(claim.get("provenance"), CID):
            provenance = await _call(s.load_record, claim["provenance"])
        if provenance is None:
            provenance = await _call(s.find_provenance, cid)
        if claim is None and provenance is None:
            self.memo[key] = owner = await _call(s.owner_of, cid)
            return owner
        source = provenance if provenance is not None else claim
        assert source is not None
        split = Split.from_record(claim["split"]) if claim is not None else DEFAULT_SPLIT
        claimant = claim["signer"] if claim is not None else await _call(s.owner_of, cid)
        if claimant is None and provenance is not None:
            claimant = provenance.get("signer")
        roles: dict[str, list[Any]] = {}
        wanted = split.shares
        if "footage" in wanted:
            shares = []
            for child in source.get("inputs") or (claim or {}).get("inputs") or []:
                found = await self.node(child, (*path, key))
                if found is not None:
                    shares.append(found)
            roles["footage"] = shares
        if "effects" in wanted:
            effects = source.get("effects") or (claim or {}).get("effects") or []
            roles["effects"] = [a for a in [await self._author(e) for e in effects] if a]
        if "recipe" in wanted:
            recipe = source.get("recipe") or (claim or {}).get("recipe")
            author = await self._author(recipe) if isinstance(recipe, CID) else None
            roles["recipe"] = [author] if author else []
        if "infrastructure" in wanted and provenance is not None:
            dids = set(provenance.get("infrastructure") or [])
            if provenance.get("renderer"):
                dids.add(provenance["renderer"])
            roles["infrastructure"] = sorted(dids)
        work = Work(key, split, roles, claimant=claimant)
        self.memo[key] = work
        return work

    async def _author(self, cid: CID) -> str | None:
        record = await _call(self.sources.load_record, cid)
        if record is None:
            return None
        author = record.get("author") or record.get("signer")
        return author if isinstance(author, str) else None


# -- the SQLite side ------------------------------------------------------------------------
class MoneyDb:
    """The ``usage`` and ``statements`` tables (own connection to the node's index file), and
    read-only lookups in the index's ``records``/``assets`` and the render ``render_outputs``."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock, self.conn:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS usage (cid TEXT PRIMARY KEY, subject TEXT NOT NULL,"
                " kind TEXT NOT NULL, count INTEGER NOT NULL, epoch TEXT NOT NULL,"
                " listener TEXT, signer TEXT NOT NULL, created TEXT NOT NULL)"
            )
            self.conn.execute("CREATE INDEX IF NOT EXISTS usage_epoch ON usage (epoch, kind)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS statements (cid TEXT PRIMARY KEY, epoch TEXT NOT NULL,"
                " policy TEXT NOT NULL, currency TEXT NOT NULL, pool INTEGER NOT NULL,"
                " count INTEGER NOT NULL, lines TEXT NOT NULL, created TEXT NOT NULL)"
            )

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            try:
                return list(self.conn.execute(sql, args))
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # e.g. nothing rendered yet
                    return []
                raise

    def put_usage(self, row: Mapping[str, Any]) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO usage VALUES"
                " (:cid, :subject, :kind, :count, :epoch, :listener, :signer, :created)",
                dict(row),
            )

    def put_statement(self, row: Mapping[str, Any]) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO statements VALUES"
                " (:cid, :epoch, :policy, :currency, :pool, :count, :lines, :created)",
                dict(row),
            )

    @staticmethod
    def _epoch_clause() -> str:
        return "(epoch = ? OR epoch LIKE ? || '-%')"

    def counts(self, epoch: str, kinds: Sequence[str] | None = None) -> dict[str, int]:
        kinds = list(kinds or USAGE_KINDS)
        marks = ",".join("?" * len(kinds))
        rows = self._query(
            f"SELECT subject, SUM(count) AS n FROM usage WHERE {self._epoch_clause()}"
            f" AND kind IN ({marks}) GROUP BY subject ORDER BY subject",
            [epoch, epoch, *kinds],
        )
        return {r["subject"]: int(r["n"]) for r in rows}

    def listens(self, epoch: str) -> dict[str, dict[str, int]]:
        rows = self._query(
            "SELECT listener, subject, SUM(count) AS n FROM usage WHERE"
            f" {self._epoch_clause()} AND kind = 'listen' AND listener IS NOT NULL"
            " GROUP BY listener, subject ORDER BY listener, subject",
            [epoch, epoch],
        )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["listener"], {})[r["subject"]] = int(r["n"])
        return out

    def statements(self, epoch: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE epoch = ?", [epoch]) if epoch else ("", [])
        rows = self._query(f"SELECT * FROM statements {where} ORDER BY created, cid", args)
        return [dict(r) for r in rows]

    def record_cids(self, type_: str, subject: str) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT cid, created FROM records WHERE type = ? AND subject = ? ORDER BY created, cid",
            [type_, subject],
        )
        return [(r["cid"], r["created"]) for r in rows]

    def render_provenance(self, output: str) -> str | None:
        rows = self._query("SELECT provenance FROM render_outputs WHERE output = ?", [output])
        return rows[0]["provenance"] if rows else None

    def asset_signer(self, cid: str) -> str | None:
        rows = self._query("SELECT signer FROM assets WHERE cid = ?", [cid])
        return rows[0]["signer"] if rows else None

    def close(self) -> None:
        self.conn.close()


# -- the service ----------------------------------------------------------------------------
def _check_epoch(epoch: str) -> str:
    if not isinstance(epoch, str) or not _EPOCH.fullmatch(epoch):
        raise ValueError(f"epoch {epoch!r}: write it as YYYY-MM or YYYY-MM-DD")
    return epoch


def current_epoch() -> str:
    """This month, UTC: ``2026-11``."""
    return utc_timestamp()[:7]


class MoneyService:
    def __init__(
        self,
        node: Node,
        *,
        find_claim: RecordLookup | None = None,
        find_provenance: RecordLookup | None = None,
        owner_of: OwnerLookup | None = None,
    ) -> None:
        self.node = node
        self.db = MoneyDb(node.config.index_path)
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
            value = dag.decode_dagcbor(await self.node.store.get(cid))
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
        claim = await _call(self.sources.find_claim, cid)
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
        signed = sign_record(record, self.node.identity)
        block = dag.record_block(signed)
        await self.node.store.put(block)
        await self.node.store.flush()
        await self.node.store.pin(block.cid)
        row = {
            "cid": cid_to_str(block.cid),
            "subject": cid_to_str(record["subject"]),
            "kind": kind,
            "count": count,
            "epoch": record["epoch"],
            "listener": listener,
            "signer": self.node.did,
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
                        artists[subject] = await _call(self.sources.owner_of, parse_cid(subject))
                    artist = artists[subject]
                    if artist is None:
                        log.warning("listens of %s left out: no known artist", subject)
                        continue
                    mine = by_artist.setdefault(listener, {})
                    mine[artist] = mine.get(artist, 0) + n
            if not by_artist:
                raise SplitError(f"no listens with a known listener and artist in {epoch}")
            pools = allocate(pool, [(listener, 1) for listener in sorted(by_artist)])
            return ninety_ten(pools, by_artist, list(operators) or [self.node.did])
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
        signed = sign_record(record, self.node.identity)
        block = dag.record_block(signed)
        store = self.node.store
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
        await self._db(
            self.node.index.put_record, key, "statement", self.node.did, record["created"], ""
        )
        await self.node.announce(block.cid)
        return block.cid, decode_lines(lines_block.data)

    async def statement(self, statement_cid: CID | str) -> tuple[Record, list[Line]]:
        """A stored statement (signature checked) and its lines."""
        record = await self.node.record(statement_cid)
        if record.get("type") != "statement":
            raise SettlementError(f"{cid_to_str(parse_cid(statement_cid))} is not a statement")
        data = await self.node.store.get(lines_cid(record))
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
async def open_money(node: Node, **callbacks: Any) -> AsyncIterator[MoneyService]:
    service = MoneyService(node, **callbacks)
    try:
        yield service
    finally:
        service.close()
