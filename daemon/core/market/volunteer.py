"""The volunteer's side of the render market (``artdag daemon --volunteer``).

Every job gossiped is checked against the capacity policy (``renderer.market.policy``): a job
the policy refuses gets a ``decline`` naming the rule and is never taken, whoever leases it; an
acceptable one gets an ``offer`` once the machine is idle, within its hours and below capacity.
A lease from the job's requester starts the work: inputs by bitswap, the step rendered in the
renderer's sandbox at the policy's niceness and within the job's caps, heartbeats while it
runs, then a ``result`` carrying the signed receipt. Work stops when the lease lapses without a
renewal, when another volunteer is named for the slot, or when the requester closes the job.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import datetime
from typing import Any

import trio

import dag
from daemon.core.market.context import FETCH_BLOCK_TIMEOUT_S, MarketContext, MarketRole
from daemon.core.market.store import JobRow
from dag import cid_to_str, parse_cid
from provenance import parse_timestamp
from renderer import InputRefused, Limits, RenderError, StepOutput
from renderer.market import (
    JobError,
    JobSpec,
    LeaseAnswer,
    VolunteerBook,
    VolunteerPolicy,
    machine_load_per_cpu,
    refuse_job,
    refuse_now,
)

__all__ = ["Volunteer"]

log = logging.getLogger("artdag.market")


class Volunteer(MarketRole):
    def __init__(
        self, ctx: MarketContext, policy: VolunteerPolicy, fault: str | None = None
    ) -> None:
        super().__init__(ctx)
        self.policy = policy
        self.fault = fault  # test only: "wrong-output"
        self.ncpu = os.cpu_count() or 1
        self.book = VolunteerBook(self.did, policy.concurrency(self.ncpu))
        self._work: dict[tuple[str, int], trio.CancelScope] = {}
        self._frames: dict[tuple[str, int], int] = {}

    async def on_close(self, record: dict[str, Any], now: float) -> None:
        known = self.book.jobs.get(record["job"])
        stopping = self.book.on_close(record["job"], record["signer"])
        for key in stopping:
            self._stop(key, "the requester closed the job")
        if known is not None and known.refused is None and not stopping:
            row = await trio.to_thread.run_sync(self.store.job, record["job"], "volunteer")
            if row is not None and row.status in ("seen", "offered"):
                await self._update_volunteer_job(
                    record["job"], status="lost", detail=f"job {record['status']} without us"
                )

    async def on_job(self, record: dict[str, Any], now: float) -> None:
        requester = record["signer"]
        self.book.forget_old(now)
        known = self.book.jobs.get(record["job"])
        try:
            spec = JobSpec.from_record(record)
            refused = refuse_job(self.policy, spec.facts())
        except JobError as exc:
            if known is None:
                await self._decline_bad(record, f"not a job this node can run: {exc}", now)
            return
        first = known is None
        known = self.book.see_job(spec, now, refused)
        if first:
            status = "declined" if refused else "seen"
            await trio.to_thread.run_sync(
                self.store.put_job,
                JobRow(
                    job_id=spec.job_id,
                    role="volunteer",
                    step=spec.step,
                    operation=spec.operation,
                    cache_id=cid_to_str(spec.cache_id),
                    requester=requester,
                    replicas=spec.replicas,
                    status=status,
                    created=now,
                    updated=now,
                    deadline=spec.deadline,
                    detail=refused or "",
                ),
            )
            if refused:
                log.info("declined job %s (%s): %s", spec.job_id, spec.operation, refused)
                await self._publish("decline", job=spec.job_id, requester=requester, reason=refused)
        self._poke()

    async def _decline_bad(self, record: dict[str, Any], reason: str, now: float) -> None:
        log.info("declined job %s: %s", record["job"], reason)
        await self._publish(
            "decline", job=record["job"], requester=record["signer"], reason=reason[:300]
        )

    async def tick(self, now: float) -> None:
        book, policy = self.book, self.policy
        for key in book.expired(now):
            self._stop(key, "the lease expired without renewal")
        book.forget_old(now)
        offerable = book.offerable(now)
        if not offerable:
            return
        busy = len(book.held)
        load = machine_load_per_cpu() if policy.idle_load > 0 else 0.0
        wait = refuse_now(
            policy, now=datetime.now().time(), load_per_cpu=load, busy=busy, ncpu=self.ncpu
        )
        if wait is not None:
            return  # ask again on a later tick
        for job_id in offerable:
            known = book.jobs[job_id]
            book.offered(job_id, now)
            await self._publish(
                "offer", job=job_id, requester=known.spec.requester, capacity=book.capacity
            )
            await self._update_volunteer_job(job_id, status="offered")

    async def _update_volunteer_job(self, job_id: str, **fields: Any) -> None:
        await trio.to_thread.run_sync(lambda: self.store.update_job(job_id, "volunteer", **fields))

    async def on_lease(self, record: dict[str, Any], now: float) -> None:
        job_id, slot = record["job"], record["slot"]
        expires = parse_timestamp(record["expires"]).timestamp()
        answer = self.book.on_lease(
            job_id, slot, record["volunteer"], expires, record["signer"], now
        )
        if answer is LeaseAnswer.START:
            known = self.book.jobs[job_id]
            await self._update_volunteer_job(job_id, status="leased")
            self._nursery.start_soon(self._do_work, known.spec, slot)
            self._poke()  # the lease clock must run while we hold a slot
        elif answer is LeaseAnswer.RELEASE:
            known = self.book.jobs[job_id]
            await self._publish(
                "release",
                job=job_id,
                slot=slot,
                requester=known.spec.requester,
                reason="this volunteer is at capacity",
            )
        elif answer is LeaseAnswer.LOST:
            self._stop((job_id, slot), "the slot was leased to another volunteer")

    def _stop(self, key: tuple[str, int], why: str) -> None:
        scope = self._work.get(key)
        if scope is not None:
            log.info("stopping job %s slot %d: %s", key[0], key[1], why)
            scope.cancel()
        self.book.finished(*key)

    async def _do_work(self, spec: JobSpec, slot: int) -> None:
        key = (spec.job_id, slot)
        scope = self._work[key] = trio.CancelScope()
        status, detail = "aborted", ""
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._heartbeats, spec, slot)
                    await self._update_volunteer_job(spec.job_id, status="rendering")
                    out = await self._render(spec, slot)
                    nursery.cancel_scope.cancel()
                raw = await self.renders.store.get(out.receipt)
                self.network.provide_soon(out.cid)
                payload: dict[str, Any] = {
                    "job": spec.job_id,
                    "slot": slot,
                    "requester": spec.requester,
                    "receipt": out.receipt,
                    "blocks": [raw],
                }
                if out.duration is not None:
                    payload["duration_ms"] = round(out.duration * 1000)
                await self._publish("result", **payload)
                status = "done"
                receipt = dag.decode_dagcbor(raw)
                await self._update_volunteer_job(
                    spec.job_id,
                    status="done",
                    output=cid_to_str(out.cid),
                    content_key=out.content_key,
                    render_ms=receipt["milliseconds"],
                )
        except (RenderError, OSError, dag.DagError, trio.TooSlowError) as exc:
            status, detail = "released", str(exc).splitlines()[0][:280]
            log.warning("job %s: cannot render: %s", spec.job_id, detail)
            await self._publish(
                "release", job=spec.job_id, slot=slot, requester=spec.requester, reason=detail
            )
        finally:
            self._work.pop(key, None)
            self._frames.pop(key, None)
            self.book.finished(spec.job_id, slot)
            if status != "done":
                with trio.CancelScope(shield=True):
                    await self._update_volunteer_job(spec.job_id, status=status, detail=detail)
            self._poke()

    async def _heartbeats(self, spec: JobSpec, slot: int) -> None:
        while True:
            await trio.sleep(self.settings.heartbeat_s)
            frames = self._frames.get((spec.job_id, slot), 0)
            await self._publish(
                "heartbeat", job=spec.job_id, slot=slot, requester=spec.requester, frames=frames
            )

    def _limits(self, spec: JobSpec) -> Limits:
        base, policy = self.renders.limits, self.policy
        return replace(
            base,
            cpu_seconds=min(base.cpu_seconds, spec.caps.cpu_seconds),
            memory_bytes=min(base.memory_bytes, spec.caps.memory_bytes),
            timeout_s=min(base.timeout_s, float(spec.caps.timeout_s)),
            max_input_bytes=min(base.max_input_bytes, policy.max_input_bytes),
            max_duration_s=min(base.max_duration_s, policy.max_input_seconds),
            niceness=policy.niceness,
        )

    async def _fetch_inputs(self, spec: JobSpec) -> None:
        """Fetch the inputs by bitswap, root first: a file whose root declares more bytes than
        the policy allows (whatever the job said) is refused before its data is fetched."""
        total = 0
        for item in spec.inputs:
            if item.cid.codec.name in ("dag-pb", "raw"):
                await self.network.get_block(item.cid, timeout=FETCH_BLOCK_TIMEOUT_S)
                total += await dag.file_size(self.renders.store, item.cid)
                if total > self.policy.max_input_bytes:
                    raise InputRefused(
                        f"inputs of {total} bytes exceed this volunteer's max_input_bytes "
                        f"({self.policy.max_input_bytes})"
                    )
        for item in spec.inputs:
            await self.network.get(item.cid, block_timeout=FETCH_BLOCK_TIMEOUT_S)

    async def _render(self, spec: JobSpec, slot: int) -> StepOutput:
        """Inputs by bitswap, then the step in the sandbox (or our own step cache)."""
        cached = await trio.to_thread.run_sync(self.renders.cache.get, cid_to_str(spec.cache_id))
        usable = cached is not None and self.fault is None
        if usable and cached and await self.renders.store.has(parse_cid(cached.output)):
            return StepOutput(
                parse_cid(cached.output),
                cached.kind,
                cached.content_key,
                parse_cid(cached.receipt),
                True,
                cached.duration,
            )
        await self._fetch_inputs(spec)
        # What earlier steps computed (kind, logical duration). A source is probed here
        # instead: its duration in the job is for the policy only, rounded to milliseconds.
        known: list[StepOutput | None] = []
        for item in spec.inputs:
            if item.kind == "media" and (item.duration_ms is None or item.id == item.cid):
                known.append(None)
            else:
                known.append(StepOutput(item.cid, item.kind, "", item.cid, True, item.duration))

        def advance(frames: int) -> None:
            self._frames[(spec.job_id, slot)] = frames

        with self.renders.workdir("job-") as workdir:
            executor = self.renders.executor(
                workdir, limits=self._limits(spec), parallel=1, fault=self.fault
            )
            return await executor.run_step(
                spec.to_step(), [i.cid for i in spec.inputs], known, advance
            )
