"""Claims on the node: sign, index, gossip, fingerprint, and find disputes.

``artdag claim CID`` signs a ``claim`` record (``provenance.claims``) naming what the work was
made from (read from its render provenance, when it was rendered here), the revenue split and
the licence, with the work's perceptual fingerprint inside so that every node can index
claimed works for near-duplicates without fetching them. The claim is stored, pinned, indexed,
appended to the creator repo (which gossips its head; followers verify and index it like any
record) and announced on ``/artdag/1/claims`` when the daemon runs.

Disputes (``artdag disputes``) are computed from every claim indexed here, local or gossiped:
two claimants on one work, or on works whose fingerprints match. The earliest anchored claim
wins (anchor times come from the anchoring service when it is wired in).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

import dag
from dag import CID, Blockstore, cid_to_str, parse_cid
from dag.sqlite_db import open_sqlite_utils
from provenance import Identity, RecordError, sign_record, verify_signed
from provenance.claims import (
    ClaimInfo,
    Dispute,
    find_disputes,
    make_claim_record,
    parse_split,
    rank_claims,
)
from provenance.fingerprints import Fingerprint, FingerprintIndex, is_near_duplicate
from renderer import Limits, RenderError
from renderer.fingerprinting import fingerprint_file

if TYPE_CHECKING:
    from daemon.core.index import Index
    from p2p.network import Network

__all__ = ["ClaimOutcome", "ClaimsService"]

log = logging.getLogger("artdag.claims")

AnchorTime = Callable[[str], Awaitable[float | None]]
Announce = Callable[[CID], Awaitable[None]]
MEDIA_PREFIXES = ("video/", "audio/")


@dataclass(frozen=True)
class ClaimOutcome:
    cid: CID
    record: dict[str, Any]
    disputes: list[Dispute]


class FingerprintTable:
    """Fingerprints by subject CID, in the node's index database (own table)."""

    def __init__(self, path: Path) -> None:
        self.db = open_sqlite_utils(path)
        self._lock = threading.Lock()
        self.db.table("fingerprints").create(
            {"subject": str, "data": bytes, "source": str}, pk="subject", if_not_exists=True
        )

    def put(self, subject: str, data: bytes, source: str) -> None:
        with self._lock, self.db.conn:
            self.db.table("fingerprints").upsert(
                {"subject": subject, "data": data, "source": source}, pk="subject"
            )

    def get(self, subject: str) -> bytes | None:
        with self._lock:
            rows = list(self.db.table("fingerprints").rows_where("subject = ?", [subject]))
        return rows[0]["data"] if rows else None

    def missing(self, limit: int = 20) -> list[str]:
        """Media assets in the index without a fingerprint yet."""
        sql = (
            "select cid from assets where (mime like 'video/%' or mime like 'audio/%') "
            "and cid not in (select subject from fingerprints) order by created limit ?"
        )
        with self._lock:
            return [row[0] for row in self.db.execute(sql, [limit]).fetchall()]

    def all(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return [(r["subject"], r["data"]) for r in self.db.table("fingerprints").rows]

    def close(self) -> None:
        self.db.conn.close()


class ClaimsService:
    """Claims signed by ``identity``, kept in ``store`` and ``index``; ``announce`` appends a
    record to the creator repo (and gossips its head when the daemon runs), ``network`` (the
    daemon's, else None) also carries each claim on the claims topic."""

    def __init__(
        self,
        store: Blockstore,
        index: Index,
        identity: Identity,
        *,
        index_path: Path,
        tmp_root: Path,
        announce: Announce,
        network: Network | None = None,
        limits: Limits | None = None,
        find_provenance: Callable[[CID], Awaitable[CID | None]] | None = None,
        anchor_time: AnchorTime | None = None,
    ) -> None:
        self.store = store
        self.records = index
        self.identity = identity
        self.tmp_root = tmp_root
        self.announce = announce
        self.network = network
        self.limits = limits or Limits()
        self.find_provenance = find_provenance
        self.anchor_time = anchor_time
        self.table = FingerprintTable(index_path)
        self._index: FingerprintIndex | None = None

    def close(self) -> None:
        self.table.close()

    # -- fingerprints --------------------------------------------------------------------------
    async def index(self) -> FingerprintIndex:
        """The near-duplicate index over every fingerprint known here (built once)."""
        if self._index is None:
            rows = await trio.to_thread.run_sync(self.table.all)
            index = FingerprintIndex()
            for subject, data in rows:
                try:
                    index.add(subject, Fingerprint.from_bytes(data))
                except ValueError:
                    log.warning("fingerprint of %s is unreadable; skipped", subject)
            self._index = index
        return self._index

    async def remember_fingerprint(self, subject: str, fp: Fingerprint, source: str) -> None:
        await trio.to_thread.run_sync(self.table.put, subject, fp.to_bytes(), source)
        index = await self.index()
        index.remove(subject)
        index.add(subject, fp)

    async def fingerprint(self, subject: CID) -> Fingerprint | None:
        """The work's fingerprint (computed from the stored file once), None if not media."""
        key = cid_to_str(subject)
        known = await trio.to_thread.run_sync(self.table.get, key)
        if known is not None:
            return Fingerprint.from_bytes(known)
        row = await trio.to_thread.run_sync(self.records.asset, key)
        if row is not None and not (row.mime or "").startswith(MEDIA_PREFIXES):
            return None
        if subject.codec.name not in ("dag-pb", "raw"):
            return None
        with tempfile.TemporaryDirectory(prefix="fingerprint-", dir=self._tmp_root()) as tmp:
            path = Path(tmp) / "work"
            with open(path, "wb") as f:
                async for piece in dag.read_file(self.store, subject):
                    await trio.to_thread.run_sync(f.write, piece)
            try:
                fp = await fingerprint_file(path, self.limits)
            except RenderError as exc:
                log.info("no fingerprint for %s: %s", key, exc)
                return None
        await self.remember_fingerprint(key, fp, "local")
        return fp

    def _tmp_root(self) -> Path:
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        return self.tmp_root

    # -- claims --------------------------------------------------------------------------------
    async def claim(
        self, subject_ref: str, split: Sequence[str] = (), license: str | None = None
    ) -> ClaimOutcome:
        subject = parse_cid(subject_ref)
        if not await self.store.has(subject):
            raise RecordError(
                f"{cid_to_str(subject)} is not in the store (fetch it first: artdag get CID)"
            )
        shares = parse_split(split)
        made: dict[str, Any] = {}
        prov_cid = await self.find_provenance(subject) if self.find_provenance else None
        if prov_cid is not None:
            prov = dag.decode_dagcbor(await self.store.get(prov_cid))
            verify_signed(prov)
            made = {
                "provenance": prov_cid,
                "inputs": list(prov.get("inputs") or []),
                "effects": list(prov.get("effects") or []),
                "recipe": prov.get("recipe"),
            }
        fp = await self.fingerprint(subject)
        record = make_claim_record(
            subject,
            split=shares,
            license=license,
            fingerprint=fp.to_bytes() if fp is not None else None,
            **made,
        )
        signed = sign_record(record, self.identity)
        block = dag.record_block(signed)
        await self.store.put(block)
        await self.store.pin(block.cid)
        await self.store.flush()
        await self._index_claim(block.cid, signed)
        await self.announce(block.cid)
        network = self.network
        if network is not None and network.gossip is not None:
            from p2p.gossip import CLAIMS, make_claim_announce

            try:
                message = make_claim_announce(self.identity, block.cid, subject)
                await network.gossip.publish(CLAIMS.name, message)
            except Exception as exc:  # the repo head carries it anyway
                log.info("claim-announce not gossiped: %s", exc)
        mine = cid_to_str(block.cid)
        disputes = [d for d in await self.disputes() if any(c.cid == mine for c in d.claims)]
        return ClaimOutcome(block.cid, signed, disputes)

    async def _index_claim(self, cid: CID, record: dict[str, Any]) -> None:
        subject = cid_to_str(record["subject"])
        await trio.to_thread.run_sync(
            self.records.put_record,
            cid_to_str(cid),
            "claim",
            record["signer"],
            record["created"],
            subject,
        )
        data = record.get("fingerprint")
        if data:
            try:
                fp = Fingerprint.from_bytes(data)
            except ValueError:
                log.warning("claim %s carries an unreadable fingerprint", cid_to_str(cid))
                return
            known = await trio.to_thread.run_sync(self.table.get, subject)
            if known is None:  # a fingerprint we computed ourselves is kept
                await self.remember_fingerprint(subject, fp, f"claim {cid_to_str(cid)}")

    async def index_remote_claim(self, cid: CID, record: dict[str, Any]) -> None:
        """A verified claim from the network (repo sync or claims gossip)."""
        await self._index_claim(cid, record)

    async def claims(self, subject: CID | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every indexed claim (or those on ``subject``), read from the store and verified."""
        key = None if subject is None else cid_to_str(subject)
        rows = await trio.to_thread.run_sync(self.records.records_of, "claim", key)
        out = []
        for row in rows:
            try:
                record = dag.decode_dagcbor(await self.store.get(parse_cid(row["cid"])))
                verify_signed(record)
            except Exception as exc:
                log.warning("indexed claim %s is unusable: %s", row["cid"], exc)
                continue
            out.append((row["cid"], record))
        return out

    async def _ranked(self, claims: list[tuple[str, dict[str, Any]]]) -> list[ClaimInfo]:
        infos = []
        for cid, record in claims:
            anchored = await self.anchor_time(cid) if self.anchor_time else None
            infos.append(ClaimInfo.from_record(cid, record, anchored))
        return rank_claims(infos)

    async def winning_claim(self, subject: CID) -> dict[str, Any] | None:
        """The claim that governs ``subject``'s revenue: the earliest anchored (then earliest
        created) of the claims indexed for it."""
        claims = await self.claims(subject)
        ranked = await self._ranked(claims)
        return dict(claims)[ranked[0].cid] if ranked else None

    async def disputes(self) -> list[Dispute]:
        infos = await self._ranked(await self.claims())
        index = await self.index()
        subjects = {info.subject for info in infos}
        near: dict[str, list[tuple[str, float]]] = {}
        for subject in sorted(subjects):
            data = await trio.to_thread.run_sync(self.table.get, subject)
            if data is None:
                continue
            fp = Fingerprint.from_bytes(data)
            for other, score in index.query(fp, limit=20):
                if other == subject or other not in subjects:
                    continue
                other_data = await trio.to_thread.run_sync(self.table.get, other)
                if other_data and is_near_duplicate(fp, Fingerprint.from_bytes(other_data)):
                    near.setdefault(subject, []).append((other, float(score)))
        return find_disputes(infos, near)
