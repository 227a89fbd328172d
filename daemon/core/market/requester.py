"""The requester's side of the render market: gossip a job, lease it, judge the results.

:meth:`Requester.run_job` gossips a step as a ``job``, grants leases on the offers that come
back (``renderer.market.leases``), renews them on heartbeats, collects ``result`` messages and
checks each receipt (signature, signer, step, inputs). Once a quorum agrees
(``renderer.market.quorum``) and the replicas still running have finished, it fetches the
agreed output by bitswap and decodes it to confirm the content key before accepting it; then it
credits the volunteers, caches the step and announces the accepted output in a ``job-close``.
Those announcements from every requester make the network-wide step cache (:meth:`reuse`).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

import dag
from daemon.core.market.context import FETCH_BLOCK_TIMEOUT_S, MarketContext, MarketError, MarketRole
from daemon.core.market.store import JobRow, ResultRow, VerdictRow
from dag import CID, cid_to_str, parse_cid
from provenance import RecordError, SignatureError, verify_signed
from renderer import CachedStep, StepOutput, content_key
from renderer.market import (
    Grant,
    JobBook,
    JobSpec,
    SlotResult,
    Verdict,
    choose_volunteers,
    is_trusted,
    replicas_after_first_grant,
)
from renderer.market.jobspec import utc_timestamp_at
from renderer.market.reputation import Credit

__all__ = ["RequestedJob", "Requester"]

log = logging.getLogger("artdag.market")

REANNOUNCE_S = 10.0  # a job with open slots is gossiped again this often (late joiners)


@dataclass
class RequestedJob:
    """A job this node asked for, while it is open."""

    spec: JobSpec
    book: JobBook
    verify: bool
    created: float
    announced: float = 0.0
    first_offer: float | None = None
    first_grant: float | None = None
    first_result: float | None = None
    declines: dict[str, str] = field(default_factory=dict)
    receipts: dict[str, bytes] = field(default_factory=dict)  # receipt CID -> block bytes
    verifying: bool = False
    done: trio.Event = field(default_factory=trio.Event)
    outcome: StepOutput | None = None
    accepted: tuple[str, ...] = ()  # volunteers whose results were accepted
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stalled_since: float | None = None  # open slots and nobody to give them to, since


class Requester(MarketRole):
    def __init__(self, ctx: MarketContext, rng: random.Random | None = None) -> None:
        super().__init__(ctx)
        self.rng = rng or random.Random()
        self.jobs: dict[str, RequestedJob] = {}

    async def tick(self, now: float) -> None:
        for job in list(self.jobs.values()):
            await self._tick_job(job, now)

    async def on_verdict_announced(self, record: dict[str, Any], now: float) -> None:
        """A ``job-close`` of any requester: remember an accepted output for reuse."""
        if record["status"] != "done" or "output" not in record or not record.get("receipts"):
            return
        row = VerdictRow(
            cache_id=cid_to_str(record["cache_id"]),
            output=cid_to_str(record["output"]),
            content_key=record["content_key"],
            kind=record.get("kind", "media"),
            duration_ms=record.get("duration_ms"),
            receipts=[cid_to_str(c) for c in record["receipts"]],
            requester=record["signer"],
            at=now,
        )
        await trio.to_thread.run_sync(self.store.put_verdict, row)

    async def run_job(
        self,
        spec: JobSpec,
        *,
        verify: bool = False,
    ) -> tuple[StepOutput, tuple[str, ...]]:
        """Gossip ``spec`` and wait for an accepted result: (output, accepting volunteers)."""
        now = time.time()
        book = JobBook(
            spec.job_id,
            spec.replicas,
            lease_s=self.settings.lease_s,
            grace_s=self.settings.grace_s,
        )
        job = RequestedJob(spec, book, verify, now)
        self.jobs[spec.job_id] = job
        row = JobRow(
            job_id=spec.job_id,
            role="requester",
            step=spec.step,
            operation=spec.operation,
            cache_id=cid_to_str(spec.cache_id),
            requester=self.did,
            replicas=spec.replicas,
            status="open",
            created=now,
            updated=now,
            deadline=spec.deadline,
        )
        await trio.to_thread.run_sync(self.store.put_job, row)
        self.network.provide_soon(*[i.cid for i in spec.inputs])
        await self._announce(job, now)
        self._poke()
        try:
            await job.done.wait()
        finally:
            self.jobs.pop(spec.job_id, None)
        if job.outcome is None:
            raise MarketError(f"step {spec.step!r}: {job.error or 'failed'}")
        return job.outcome, job.accepted

    async def _announce(self, job: RequestedJob, now: float) -> None:
        payload = job.spec.payload()
        payload["replicas"] = job.book.replicas
        payload["open"] = job.book.open_slots()
        job.announced = now
        await self._publish("job", **payload)

    async def _tick_job(self, job: RequestedJob, now: float) -> None:
        book, spec = job.book, job.spec
        if job.done.is_set() or job.verifying:
            return
        if now >= spec.deadline:
            return await self._fail(job, "the deadline passed before a result was accepted")
        silent = book.expire_due(now)
        for did in silent:
            log.info("job %s: lease of %s expired; leasing the slot again", spec.job_id, did)
            await self._credit(did, expired=1)
        if await self._check_verdict(job):
            return
        if book.needs_another_replica():
            if book.live_slots() >= book.max_replicas:
                return await self._fail(job, "the volunteers' results disagree; no quorum")
            book.set_replicas(book.replicas + 1)
            log.info("job %s: results disagree; asking for replica %d", spec.job_id, book.replicas)
        if book.open_slots() and not book.candidates():
            # Nobody (else) to give an open slot to: fail after offer_wait, with the reasons.
            job.stalled_since = job.stalled_since or now
            waited = now - job.stalled_since
            if waited >= self.settings.offer_wait_s:
                return await self._fail(job, self._stall_reason(job, waited))
        else:
            job.stalled_since = None
        if silent or (book.open_slots() and now - job.announced >= REANNOUNCE_S):
            await self._announce(job, now)
        await self._grant(job, now)

    def _stall_reason(self, job: RequestedJob, waited: float) -> str:
        reasons = "; ".join(f"{d[-8:]}: {r}" for d, r in sorted(job.declines.items()))
        if not job.book.offers and not job.book.excluded:
            why = f"declined by every volunteer ({reasons})" if reasons else "no offers"
            return f"no volunteer took the job in {waited:.0f} s: {why}"
        usable = len(job.book.holders()) + len(job.book.candidates())
        return (
            f"the job needs {job.book.replicas} independent volunteers; only {usable} usable "
            f"offered in {waited:.0f} s" + (f" (declined: {reasons})" if reasons else "")
        )

    def _load(self) -> dict[str, int]:
        load: dict[str, int] = {}
        for other in self.jobs.values():
            for slot in other.book.slots:
                if slot.state.value == "leased" and slot.volunteer:
                    load[slot.volunteer] = load.get(slot.volunteer, 0) + 1
        return load

    async def _grant(self, job: RequestedJob, now: float) -> None:
        book = job.book
        if not book.grantable(now) or not book.candidates():
            return
        dids = [o.volunteer for o in book.candidates()]
        rows = await trio.to_thread.run_sync(lambda: [self.store.volunteer(d) for d in dids])
        credits = {row.did: row.credit for row in rows if row is not None}
        for slot, did in choose_volunteers(
            book, load=self._load(), credits=credits, rng=self.rng, now=now
        ):
            if slot not in book.grantable(now) or did in book.holders() | book.excluded:
                continue  # another task granted meanwhile (the store lookup above awaited)
            if not book.granted_once:
                trusted = is_trusted(credits.get(did) or Credit(), self.settings.trust_after)
                wanted = replicas_after_first_grant(
                    book.replicas,
                    trusted=trusted,
                    adaptive=self.settings.adaptive,
                    verify=job.verify,
                    spot_check=self.settings.spot_check,
                    rng=self.rng,
                )
                if wanted != book.replicas:
                    log.info("job %s: %s is trusted; %d replica(s)", job.spec.job_id, did, wanted)
                    book.set_replicas(wanted)
            grant = book.grant(slot, did, now)
            job.first_grant = job.first_grant or now
            await self._send_lease(grant)
            await self._credit(did, leases=1)
            await self._update_job(job, status="leased", volunteers=sorted(book.holders()))

    async def _send_lease(self, grant: Grant) -> None:
        await self._publish(
            "lease",
            job=grant.job_id,
            slot=grant.slot,
            volunteer=grant.volunteer,
            expires=utc_timestamp_at(grant.expires),
        )

    async def _update_job(self, job: RequestedJob, **fields: Any) -> None:
        await trio.to_thread.run_sync(
            lambda: self.store.update_job(job.spec.job_id, "requester", **fields)
        )

    async def _fail(self, job: RequestedJob, reason: str) -> None:
        log.warning("job %s (%s) failed: %s", job.spec.job_id, job.spec.step, reason)
        job.error = reason
        job.book.close()
        await self._update_job(job, status="failed", detail=reason[:300])
        await self._publish(
            "job-close",
            job=job.spec.job_id,
            status="failed",
            cache_id=job.spec.cache_id,
            reason=reason[:300],
        )
        job.done.set()

    async def on_offer(self, record: dict[str, Any], now: float) -> None:
        job = self.jobs.get(record["job"])
        if job is None or record["requester"] != self.did:
            return
        job.book.offer(record["signer"], record["capacity"], now)
        job.first_offer = job.first_offer or now
        if not job.done.is_set() and not job.verifying:
            await self._grant(job, now)  # at once: waiting for the next tick costs ~50 ms a step
        self._poke()

    async def on_decline(self, record: dict[str, Any], now: float) -> None:
        job = self.jobs.get(record["job"])
        if job is None or record["requester"] != self.did:
            return
        job.declines[record["signer"]] = record["reason"]
        await self._update_job(job, detail=f"declined by {record['signer'][-8:]}: "[:100]
                               + record["reason"][:190])  # fmt: skip

    async def on_heartbeat(self, record: dict[str, Any], now: float) -> None:
        job = self.jobs.get(record["job"])
        if job is None or record["requester"] != self.did:
            return
        grant = job.book.renew(record["signer"], record["slot"], now, record["frames"])
        if grant is not None:
            await self._send_lease(grant)

    async def on_release(self, record: dict[str, Any], now: float) -> None:
        job = self.jobs.get(record["job"])
        if job is None or record["requester"] != self.did:
            return
        if job.book.release(record["signer"], record["slot"]):
            log.info("job %s: %s released its slot: %s", job.spec.job_id, record["signer"],
                     record["reason"])  # fmt: skip
            self._poke()

    async def on_result(self, record: dict[str, Any], now: float) -> None:
        job = self.jobs.get(record["job"])
        if job is None or record["requester"] != self.did:
            return
        volunteer, slot = record["signer"], record["slot"]
        try:
            receipt, raw = self._check_receipt(job.spec, record)
        except (RecordError, SignatureError, ValueError, dag.DagError) as exc:
            log.warning("job %s: result from %s refused: %s", job.spec.job_id, volunteer, exc)
            if job.book.release(volunteer, slot):
                job.book.excluded.add(volunteer)
                await self._credit(volunteer, rejected=1)
            return
        result = SlotResult(
            volunteer=volunteer,
            slot=slot,
            receipt=record["receipt"],
            output=receipt["output"],
            content_key=receipt["content_key"],
            duration_ms=record.get("duration_ms"),
            render_ms=receipt["milliseconds"],
        )
        if not job.book.result(volunteer, slot, result):
            return  # not (or no longer) the holder of that slot
        job.first_result = job.first_result or now
        job.receipts[cid_to_str(record["receipt"])] = raw
        await self.renders.store.put(dag.Block.checked(record["receipt"], raw))
        await trio.to_thread.run_sync(
            self.store.put_result,
            ResultRow(
                job_id=job.spec.job_id,
                volunteer=volunteer,
                slot=slot,
                receipt=cid_to_str(result.receipt),
                output=cid_to_str(result.output),
                content_key=result.content_key,
                duration_ms=result.duration_ms,
                render_ms=result.render_ms,
                verdict="pending",
                at=now,
            ),
        )
        await self._check_verdict(job)
        self._poke()

    async def _check_verdict(self, job: RequestedJob) -> bool:
        """Once a quorum agrees, no new replica is leased; replicas still running may finish
        (until their lease lapses) so that their results are judged too, as BOINC's validator
        does. Then the agreed output is verified and accepted."""
        verdict = job.book.verdict()
        if verdict is None or job.verifying:
            return False
        job.book.close_open()
        if job.book.running():
            return False
        job.verifying = True
        await self._update_job(job, status="verifying")
        self._nursery.start_soon(self._accept, job, verdict)
        return True

    def _check_receipt(self, spec: JobSpec, record: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The receipt inline in a result, checked: right bytes, signed by the volunteer who
        sent it, about this job's step and inputs."""
        blocks = record.get("blocks") or []
        wanted = record["receipt"]
        raw = next((b for b in blocks if dag.Block.encode(b, "dag-cbor").cid == wanted), None)
        if raw is None:
            raise ValueError("the result does not carry its receipt")
        receipt = dag.decode_dagcbor(raw)
        verify_signed(receipt)
        if receipt.get("type") != "receipt":
            raise ValueError("the receipt is not a receipt record")
        if receipt["signer"] != record["signer"] or receipt["renderer"] != record["signer"]:
            raise ValueError("the receipt is signed by someone else")
        if receipt["cache_id"] != spec.cache_id or receipt["effect"] != spec.effect:
            raise ValueError("the receipt is for another step")
        if list(receipt["inputs"]) != [i.cid for i in spec.inputs]:
            raise ValueError("the receipt names other inputs")
        return receipt, raw

    async def _accept(self, job: RequestedJob, verdict: Verdict) -> None:
        """Fetch the agreed output, decode it and check it is what the quorum said; then
        credit the volunteers, cache the step and close the job."""
        spec, started = job.spec, time.time()
        candidate = verdict.agreeing[0]
        try:
            with trio.fail_after(max(60.0, spec.caps.timeout_s)):
                await self.network.get(candidate.output, block_timeout=FETCH_BLOCK_TIMEOUT_S)
            fetched = time.time()
            key = await self._decode_key(candidate.output)
        except (Exception, trio.TooSlowError) as exc:
            log.warning("job %s: output of %s unusable: %s", spec.job_id, candidate.volunteer, exc)
            key, fetched = None, time.time()
        if key != verdict.content_key:
            log.warning(
                "job %s: output %s of %s does not decode to the agreed key; refused",
                spec.job_id,
                cid_to_str(candidate.output),
                candidate.volunteer,
            )
            job.book.refuse({candidate.volunteer})
            await self._credit(candidate.volunteer, rejected=1)
            await trio.to_thread.run_sync(
                self.store.set_verdict, spec.job_id, candidate.volunteer, candidate.slot, "rejected"
            )
            job.verifying = False
            self._poke()
            return
        now = time.time()
        job.timings = {
            "offer": (job.first_offer or job.created) - job.created,
            "lease": (job.first_grant or now) - (job.first_offer or job.created),
            "work": (job.first_result or now) - (job.first_grant or now),
            "render": candidate.render_ms / 1000,
            "fetch": fetched - started,
            "verify": now - fetched,
            "total": now - job.created,
        }
        await self._record_verdicts(spec.job_id, verdict)
        receipts = [r.receipt for r in verdict.agreeing]
        for receipt in receipts:
            await self.renders.store.pin(receipt)
        await self.renders.store.pin(candidate.output)
        duration = None if verdict.duration_ms is None else verdict.duration_ms / 1000
        outcome = StepOutput(candidate.output, "media", key, candidate.receipt, False, duration)
        await self._cache_step(spec.cache_id, outcome)
        for slot in job.book.close():  # replicas still rendering are not needed any more
            log.info("job %s: slot %d no longer needed", spec.job_id, slot.index)
        job.accepted = tuple(r.volunteer for r in verdict.agreeing)
        job.outcome = outcome
        await self._update_job(
            job,
            status="done",
            output=cid_to_str(candidate.output),
            content_key=key,
            volunteers=list(job.accepted),
            timings=job.timings,
            render_ms=candidate.render_ms,
            detail="",
        )
        await self._publish(
            "job-close",
            job=spec.job_id,
            status="done",
            cache_id=spec.cache_id,
            output=candidate.output,
            content_key=key,
            kind="media",
            receipts=receipts,
            **({} if verdict.duration_ms is None else {"duration_ms": verdict.duration_ms}),
        )
        job.done.set()

    async def _record_verdicts(self, job_id: str, verdict: Verdict) -> None:
        """Credit the agreeing volunteers, debit the outvoted ones; their results' verdicts."""
        for result in verdict.agreeing:
            await self._credit(result.volunteer, accepted=1, rendered_ms=result.render_ms)
            await trio.to_thread.run_sync(
                self.store.set_verdict, job_id, result.volunteer, result.slot, "accepted"
            )
        for result in verdict.disagreeing:
            log.warning("job %s: %s was outvoted", job_id, result.volunteer)
            await self._credit(result.volunteer, rejected=1)
            await trio.to_thread.run_sync(
                self.store.set_verdict, job_id, result.volunteer, result.slot, "rejected"
            )

    async def _decode_key(self, cid: CID) -> str:
        with self.renders.workdir("verify-") as workdir:
            path = Path(workdir) / "output"
            with open(path, "wb") as f:
                async for piece in dag.read_file(self.renders.store, cid):
                    await trio.to_thread.run_sync(f.write, piece)
            return await content_key(path, self.renders.limits)

    async def _cache_step(self, cache_id: CID, out: StepOutput) -> None:
        entry = CachedStep(
            cid_to_str(cache_id),
            cid_to_str(out.cid),
            cid_to_str(out.receipt),
            out.content_key,
            out.kind,
            out.duration,
        )
        await trio.to_thread.run_sync(self.renders.cache.put, entry)

    async def reuse(self, cache_id: CID) -> StepOutput | None:
        """A step another requester had accepted (a ``job-close`` we saw): fetch its output and
        one receipt, decode the output, and use it if the key matches."""
        row = await trio.to_thread.run_sync(self.store.verdict, cid_to_str(cache_id))
        if row is None or not row.receipts:
            return None
        output, receipt = parse_cid(row.output), parse_cid(row.receipts[0])
        try:
            with trio.fail_after(300):
                raw = await self.network.get_block(receipt, timeout=FETCH_BLOCK_TIMEOUT_S)
                await self.network.get(output, block_timeout=FETCH_BLOCK_TIMEOUT_S)
            record = dag.decode_dagcbor(raw)
            verify_signed(record)
            if record.get("cache_id") != cache_id or record.get("output") != output:
                raise ValueError("its receipt is for another step")
            key = await self._decode_key(output)
        except (Exception, trio.TooSlowError) as exc:
            log.info("cannot reuse step %s: %s", cid_to_str(cache_id), exc)
            return None
        if key != row.content_key:
            log.warning("network cache entry %s does not decode to its key", cid_to_str(cache_id))
            return None
        await self.renders.store.pin(receipt)
        await self.renders.store.pin(output)
        duration = None if row.duration_ms is None else row.duration_ms / 1000
        out = StepOutput(output, row.kind, key, receipt, True, duration)
        await self._cache_step(cache_id, out)
        return out
