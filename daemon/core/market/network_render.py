"""Rendering a recipe on the network: each step a job, independent steps at once.

The plan is the same as for a local render (same steps, same cache ids). Each step becomes a
task that waits for the steps making its inputs, then takes the first of: this node's step
cache; a local run for steps that are not filter graphs (``identity``, ``dog``,
``analyze-beats`` are cheap or need no ffmpeg graph); an output the network already accepted
for the same cache id (``MarketService.reuse``, skipped when verifying); or a job gossiped to
volunteers (``MarketService.run_job``). Steps whose inputs are ready run at the same time, so
independent segments go to different volunteers. The provenance names every accepted
volunteer as render infrastructure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import trio

import dag
from daemon.core.market.service import MarketService, new_job_id
from daemon.core.render.service import RenderOutcome, RenderService
from dag import CID, cid_to_str
from renderer import Executor, Plan, RenderResult, Step, StepOutput
from renderer.market import JobCaps, JobInput, job_for_step

__all__ = ["render_on_network"]

ProgressEvent = Callable[[dict[str, Any]], None]


async def _size(store: dag.Blockstore, cid: CID) -> int:
    if cid.codec.name in ("dag-pb", "raw"):
        return await dag.file_size(store, cid)
    return len(await store.get(cid))


async def render_on_network(
    market: MarketService,
    renders: RenderService,
    ref: str,
    inputs: Mapping[str, str | CID],
    params: Mapping[str, Any] | None = None,
    *,
    replicas: int | None = None,
    verify: bool = False,
    deadline_s: float | None = None,
    progress: ProgressEvent | None = None,
) -> RenderOutcome:
    """Render ``ref`` with volunteers doing the filter-graph steps; sign the provenance."""
    started = time.monotonic()
    prepared = await renders.prepare(ref, inputs, params)
    plan = prepared.plan
    settings = market.settings
    k = replicas or settings.replicas
    if not 1 <= k <= 9:
        raise ValueError(f"replicas must be 1..9, got {k}")
    deadline = time.time() + (deadline_s or settings.deadline_s)
    limits = renders.limits
    caps = JobCaps(limits.cpu_seconds, limits.memory_bytes, int(limits.timeout_s))
    outputs: dict[str, StepOutput] = {}
    ready = {step_id: trio.Event() for step_id in plan.steps}
    infrastructure: set[str] = set()
    result = RenderResult(plan, None, outputs)  # type: ignore[arg-type]

    def tell(event: dict[str, Any]) -> None:
        if progress is not None:
            progress({**event, "steps": len(plan.steps), "finished": len(outputs)})

    async def obtain(step: Step, local: Any) -> None:
        for item in step.inputs:
            if isinstance(item, str):
                await ready[item].wait()
        sources = [r if isinstance(r, CID) else outputs[r].cid for r in step.inputs]
        known = [None if isinstance(r, CID) else outputs[r] for r in step.inputs]
        out = None if verify else await _cached(renders, step)
        how = "cached"
        if out is None and step.effect.runs != "graph":
            out, how = await local.run_step(step, sources, known), "local"
        if out is None and not verify:
            out, how = await market.reuse(step.cache_id), "reused"
        if out is None:
            job_inputs = await _job_inputs(renders, local, plan, step, sources, outputs)
            spec = job_for_step(
                step, job_inputs, job_id=new_job_id(), replicas=k, deadline=deadline, caps=caps
            )
            spec = replace(spec, requester=market.did)
            tell({"step": step.id, "status": "published", "job": spec.job_id})
            out, volunteers = await market.run_job(spec, verify=verify)
            infrastructure.update(volunteers)
            how = "remote"
        outputs[step.id] = out
        (result.cached if how in ("cached", "reused") else result.rendered).append(step.id)
        ready[step.id].set()
        tell({"step": step.id, "status": how, "output": cid_to_str(out.cid)})

    with renders.workdir() as workdir:
        local = renders.executor(workdir)
        try:
            async with trio.open_nursery() as nursery:
                for step in plan.steps.values():
                    nursery.start_soon(obtain, step, local)
        except BaseExceptionGroup as group:
            raise dag.first_error(group) from None
    result.output = outputs[plan.output]
    result.seconds = time.monotonic() - started
    order = list(plan.steps)
    result.rendered.sort(key=order.index)
    result.cached.sort(key=order.index)
    return await renders.finish(prepared, result, infrastructure=sorted(infrastructure))


async def _job_inputs(
    renders: RenderService,
    local: Executor,
    plan: Plan,
    step: Step,
    sources: list[CID],
    outputs: Mapping[str, StepOutput],
) -> list[JobInput]:
    """What a job says of each input of ``step``: CID, cache id, kind, size and length (a
    source's length probed here, for the volunteers' policy)."""
    job_inputs = []
    for item, cid in zip(step.inputs, sources, strict=True):
        made = None if isinstance(item, CID) else outputs[item]
        ident = item if isinstance(item, CID) else plan.steps[item].cache_id
        duration = (await local.probe_input(cid)).duration if made is None else made.duration
        job_inputs.append(
            JobInput(
                cid,
                ident,
                "media" if made is None else made.kind,
                await _size(renders.store, cid),
                None if duration is None else round(duration * 1000),
            )
        )
    return job_inputs


async def _cached(renders: RenderService, step: Step) -> StepOutput | None:
    hit = await trio.to_thread.run_sync(renders.cache.get, cid_to_str(step.cache_id))
    if hit is None or not await renders.store.has(dag.parse_cid(hit.output)):
        return None
    return StepOutput(
        dag.parse_cid(hit.output),
        hit.kind,
        hit.content_key,
        dag.parse_cid(hit.receipt),
        True,
        hit.duration,
    )
