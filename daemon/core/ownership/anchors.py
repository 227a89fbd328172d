"""Anchoring service: stamp batches of records with OpenTimestamps calendars, keep the proofs,
upgrade them when Bitcoin has confirmed, and verify them against Bitcoin block headers.

The proof logic is pure (:mod:`provenance.anchoring`); this module does the I/O around it:
HTTP to the calendars (``POST <calendar>/digest``, ``GET <calendar>/timestamp/<hex>``, the
protocol of ``opentimestamps.calendar.RemoteCalendar``, spoken here over httpx so it runs on
trio without threads), HTTP to an Esplora-style block explorer for headers
(``GET {base}/block-height/{h}``, ``GET {base}/block/{hash}/header``), the signed ``anchor``
record in the blockstore, ``.ots`` files under ``$ARTDAG_HOME/anchors/`` and two tables in the
node's index DB: ``anchors`` (one row per anchor record) and ``anchor_leaves`` (record CID ->
anchor).

Status of an anchor: ``pending`` (only calendar promises), ``complete`` (the proof reaches a
Bitcoin block header attestation), ``verified`` (that attestation was checked against the
block header from the header source; ``block_time`` is then known and is what dispute
resolution compares, via :meth:`AnchorService.earliest_time`).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from multiformats import CID
from opentimestamps.calendar import DEFAULT_AGGREGATORS, DEFAULT_CALENDAR_WHITELIST

import dag
from daemon.core.ownership.anchor_tables import AnchorRow, AnchorTables, anchor_row
from daemon.core.ownership.block_headers import DEFAULT_HEADER_SOURCE, EsploraHeaders, HeaderSource
from dag import Blockstore, cid_to_str, parse_cid
from provenance import Identity, sign_record, utc_timestamp, verify_signed
from provenance.anchoring import (
    AnchorError,
    Attestation,
    LeafPath,
    OtsStep,
    attestations,
    batch_root,
    commitment_of,
    is_complete,
    leaf_path,
    merge_answer,
    new_timestamp,
    ots_path,
    parse_ots,
    serialize_ots,
    verify_header,
    verify_leaf,
)

__all__ = [
    "DEFAULT_CALENDARS",
    "DEFAULT_HEADER_SOURCE",
    "AnchorRow",
    "AnchorService",
    "EsploraHeaders",
    "HeaderSource",
    "VerifyReport",
]

DEFAULT_CALENDARS: tuple[str, ...] = tuple(DEFAULT_AGGREGATORS)
_ACCEPT = {"Accept": "application/vnd.opentimestamps.v1", "User-Agent": "artdag"}
_MAX_ANSWER = 10_000  # bytes, as the reference client


@dataclass(frozen=True)
class VerifyReport:
    cid: str
    record: str
    root: str
    ok: bool
    reason: str
    leaf_path: LeafPath | None = None
    ots_steps: list[OtsStep] = field(default_factory=list)
    attestation: Attestation | None = None
    block_height: int | None = None
    block_time: int | None = None
    block_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "record": self.record,
            "root": self.root,
            "ok": self.ok,
            "reason": self.reason,
            "leaf_path": None if self.leaf_path is None else self.leaf_path.to_json(),
            "ots_steps": [s.to_json() for s in self.ots_steps],
            "attestation": None if self.attestation is None else self.attestation.to_json(),
            "block_height": self.block_height,
            "block_time": self.block_time,
            "block_hash": self.block_hash,
        }


class AnchorService:
    def __init__(
        self,
        store: Blockstore,
        identity: Identity,
        db_path: Path,
        home: Path,
        calendars: Sequence[str] = DEFAULT_CALENDARS,
        header_source: str | HeaderSource = DEFAULT_HEADER_SOURCE,
        http_client: httpx.AsyncClient | None = None,
        *,
        timeout: float = 20,
    ) -> None:
        if not calendars:
            raise AnchorError("anchoring needs at least one calendar URL")
        self.store = store
        self.identity = identity
        self.dir = Path(home) / "anchors"
        self.calendars = [c.rstrip("/") for c in calendars]
        self.timeout = timeout
        self._own_client = http_client is None
        self.client = http_client or httpx.AsyncClient(timeout=timeout)
        self.headers: HeaderSource = (
            EsploraHeaders(header_source, self.client, timeout)
            if isinstance(header_source, str)
            else header_source
        )
        self.tables = AnchorTables(Path(db_path))
        self._own_tables = True

    def using(
        self, calendars: Sequence[str] = (), header_source: str | None = None
    ) -> AnchorService:
        """This service asking other calendars or another header source (the CLI's
        ``--calendar`` and ``--headers``); it shares this one's tables and HTTP client, and
        closing it closes neither."""
        if not calendars and header_source is None:
            return self
        view = copy.copy(self)
        view._own_client = view._own_tables = False
        if calendars:
            view.calendars = [c.rstrip("/") for c in calendars]
        if header_source is not None:
            view.headers = EsploraHeaders(header_source, self.client, self.timeout)
        return view

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()
        if self._own_tables:
            self.tables.close()

    async def __aenter__(self) -> AnchorService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- queries (quick sqlite reads) ----------------------------------------------------------

    def anchors(self) -> list[AnchorRow]:
        return [anchor_row(r) for r in self.tables.rows()]

    def anchor_of(self, cid: str | CID) -> AnchorRow | None:
        """The anchor holding ``cid`` (a leaf, or the anchor record itself): the verified one
        with the earliest block, else the oldest."""
        rows = [anchor_row(r) for r in self.tables.of_leaf(str(cid))]
        if not rows:
            return None
        verified = [r for r in rows if r.block_time is not None]
        if verified:
            return min(verified, key=lambda r: (r.block_time or 0, r.created))
        return rows[0]

    def unanchored(self, cids: Sequence[str]) -> list[str]:
        """Those of ``cids`` that no anchor holds yet, in their order."""
        return [cid for cid in cids if self.anchor_of(cid) is None]

    def earliest_time(self, cid: str | CID) -> float | None:
        """The earliest verified Bitcoin block time (Unix seconds) attesting ``cid``, if any."""
        times = [
            r["block_time"]
            for r in self.tables.of_leaf(str(cid))
            if r["status"] == "verified" and r["block_time"] is not None
        ]
        return float(min(times)) if times else None

    # -- anchoring -----------------------------------------------------------------------------

    async def anchor(self, cids: Sequence[str | CID]) -> AnchorRow:
        """Stamp the records not yet anchored among ``cids`` as one batch; store the proof and
        a signed ``anchor`` record. At least one calendar must answer."""
        leaves = await self._leaves(cids)
        root = batch_root(leaves)
        ots = new_timestamp(root)
        commitment = commitment_of(ots)
        answers: dict[str, bytes] = {}
        errors: list[str] = []

        async def submit(url: str) -> None:
            try:
                answers[url] = await self._request("POST", f"{url}/digest", commitment)
            except AnchorError as exc:
                errors.append(str(exc))

        async with trio.open_nursery() as nursery:
            for url in self.calendars:
                nursery.start_soon(submit, url)
        accepted = []
        for url in self.calendars:  # in configured order, so the record is deterministic
            if url in answers:
                try:
                    merge_answer(ots, commitment, answers[url])
                    accepted.append(url)
                except AnchorError as exc:
                    errors.append(f"calendar {url}: {exc}")
        if not accepted:
            raise AnchorError(f"no calendar accepted the batch: {'; '.join(errors)}")

        record = {
            "type": "anchor",
            "version": 1,
            "root": root,
            "leaves": leaves,
            "calendars": accepted,
            "created": utc_timestamp(),
        }
        signed = sign_record(record, self.identity)
        block = dag.record_block(signed)
        await self.store.put(block)
        await self.store.flush()
        await self.store.pin(block.cid)
        record_cid = cid_to_str(block.cid)
        data = serialize_ots(ots)
        path = self.dir / f"{record_cid}.ots"
        await trio.to_thread.run_sync(_write_atomically, path, data)
        row = {
            "record": record_cid,
            "root": root.hex(),
            "leaves": json.dumps([cid_to_str(c) for c in leaves]),
            "calendars": json.dumps(accepted),
            "ots": data,
            "ots_path": str(path),
            "status": "complete" if is_complete(ots) else "pending",
            "block_height": None,
            "block_time": None,
            "block_hash": None,
            "created": signed["created"],
            "upgraded": None,
        }
        await trio.to_thread.run_sync(self.tables.insert, row, [cid_to_str(c) for c in leaves])
        return anchor_row(row)

    async def _leaves(self, cids: Sequence[str | CID]) -> list[CID]:
        parsed: list[CID] = []
        for value in cids:
            try:
                cid = parse_cid(value) if isinstance(value, str) else value
            except dag.DagError as exc:
                raise AnchorError(f"not a CID: {value!r} ({exc})") from None
            if cid.codec.name != "dag-cbor":
                raise AnchorError(f"{cid} is not a record (codec {cid.codec.name}, not dag-cbor)")
            if not await self.store.has(cid):
                raise AnchorError(f"record {cid} is not in the store")
            if cid not in parsed:
                parsed.append(cid)
        if not parsed:
            raise AnchorError("nothing to anchor: no record CIDs given")
        strs = [cid_to_str(c) for c in parsed]
        done = await trio.to_thread.run_sync(self.tables.anchored, strs)
        fresh = [c for c, s in zip(parsed, strs, strict=True) if s not in done]
        if not fresh:
            raise AnchorError("nothing to anchor: every record given is already anchored")
        return fresh

    async def _request(self, method: str, url: str, body: bytes | None = None) -> bytes:
        """One calendar request; 404 gives ``b""`` (the calendar has nothing yet)."""
        try:
            with trio.fail_after(self.timeout):
                response = await self.client.request(method, url, content=body, headers=_ACCEPT)
        except trio.TooSlowError:
            raise AnchorError(f"calendar {url}: no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise AnchorError(f"calendar {url}: {exc}") from None
        if response.status_code == 404 and method == "GET":
            return b""
        if response.status_code != 200:
            raise AnchorError(f"calendar {url}: HTTP {response.status_code}")
        if len(response.content) > _MAX_ANSWER:
            raise AnchorError(f"calendar {url}: answer exceeds {_MAX_ANSWER} bytes")
        return response.content

    # -- upgrading -----------------------------------------------------------------------------

    def _trusted(self, url: str) -> bool:
        return url.rstrip("/") in self.calendars or url in DEFAULT_CALENDAR_WHITELIST

    async def _upgrade(self, row: AnchorRow) -> AnchorRow:
        data = await trio.to_thread.run_sync(Path(row.ots_path).read_bytes)
        ots = parse_ots(data)
        if is_complete(ots):
            return row
        changed = 0
        for att in attestations(ots):
            if att.kind != "pending" or att.calendar is None or not self._trusted(att.calendar):
                continue
            url = f"{att.calendar.rstrip('/')}/timestamp/{att.msg.hex()}"
            try:
                answer = await self._request("GET", url)
            except AnchorError:
                continue  # a calendar down now may answer at the next upgrade
            if answer:
                changed += merge_answer(ots, att.msg, answer)
        now = utc_timestamp()
        values: dict[str, Any] = {"upgraded": now}
        if changed:
            data = serialize_ots(ots)
            await trio.to_thread.run_sync(_write_atomically, Path(row.ots_path), data)
            values["ots"] = data
        if is_complete(ots):
            values["status"] = "complete"
            values["block_height"] = min(
                a.height for a in attestations(ots) if a.height is not None
            )
        await trio.to_thread.run_sync(self.tables.update, row.record, values)
        return anchor_row(await trio.to_thread.run_sync(self._raw, row.record))

    def _raw(self, record: str) -> dict[str, Any]:
        return self.tables.rows("record = ?", [record])[0]

    async def upgrade_all(self) -> list[AnchorRow]:
        """Ask the calendars about every pending anchor; returns the rows now complete."""
        rows = [r for r in self.anchors() if r.status == "pending"]
        done = []
        for row in rows:
            new = await self._upgrade(row)
            if new.status != "pending":
                done.append(new)
        return done

    # -- verifying -----------------------------------------------------------------------------

    async def verify(self, cid: str | CID) -> VerifyReport:
        """Check the anchor of ``cid`` (a record in a batch, or an anchor record) end to end:
        the signed anchor record, the leaf's path to the root, the proof's path to a Bitcoin
        attestation, and that attestation against the header source's block header."""
        key = str(cid)
        rows = [anchor_row(r) for r in await trio.to_thread.run_sync(self.tables.of_leaf, key)]
        if not rows:
            raise AnchorError(f"{key} is in no anchor (run `artdag anchor` first)")
        reports = [await self._verify_row(key, row) for row in rows]
        good = [r for r in reports if r.ok]
        if good:
            return min(good, key=lambda r: r.block_time or 0)
        return reports[0]

    async def _verify_row(self, key: str, row: AnchorRow) -> VerifyReport:
        def report(ok: bool, reason: str, **more: Any) -> VerifyReport:
            return VerifyReport(key, row.record, row.root, ok, reason, **more)

        # The signed record is the commitment: its root must be the Merkle root of its leaves.
        try:
            record = dag.decode_dagcbor(await self.store.get(parse_cid(row.record)))
            verify_signed(record)
        except (dag.DagError, ValueError) as exc:
            return report(False, f"anchor record {row.record}: {exc}")
        leaves: list[CID] = list(record["leaves"])
        root: bytes = record["root"]
        if batch_root(leaves) != root or root.hex() != row.root:
            return report(False, f"anchor record {row.record}: root does not match its leaves")

        path = None
        if key != row.record:
            path = leaf_path(leaves, parse_cid(key))
            if not verify_leaf(root, parse_cid(key), path.proof):
                return report(False, f"{key} does not lead to root {row.root}", leaf_path=path)

        if row.status == "pending":
            row = await self._upgrade(row)
        ots = parse_ots(await trio.to_thread.run_sync(Path(row.ots_path).read_bytes))
        if ots.file_digest != root:
            return report(False, "the .ots proof is for another digest", leaf_path=path)
        bitcoin = [a for a in attestations(ots) if a.kind == "bitcoin"]
        if not bitcoin:
            waiting = ", ".join(a.calendar or "?" for a in attestations(ots))
            pending_att = attestations(ots)[0] if attestations(ots) else None
            steps = ots_path(ots, pending_att) if pending_att else []
            return report(
                False,
                f"pending: not yet in a Bitcoin block (calendars: {waiting})",
                leaf_path=path,
                ots_steps=steps,
                attestation=pending_att,
            )
        att = bitcoin[0]
        steps = ots_path(ots, att)
        assert att.height is not None
        block_hash, header = await self.headers.header(att.height)
        verdict = verify_header(ots, header, height=att.height, expected_hash=block_hash)
        if verdict.ok:
            values = {
                "status": "verified",
                "block_height": att.height,
                "block_time": verdict.block_time,
                "block_hash": verdict.block_hash,
            }
            await trio.to_thread.run_sync(self.tables.update, row.record, values)
        return report(
            verdict.ok,
            verdict.reason,
            leaf_path=path,
            ots_steps=steps,
            attestation=att,
            block_height=att.height,
            block_time=verdict.block_time,
            block_hash=verdict.block_hash,
        )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".ots.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
