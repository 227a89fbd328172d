"""Running a plan: steps in parallel (trio), outputs into the store, a signed receipt per step.

Theory of operation. The executor looks every step's cache id up in the step cache; a hit whose
output is still in the store is reused. Of the rest it runs only what the output needs,
grouped into jobs by :func:`renderer.planner.fuse_chains` (one ffmpeg run per job). Each job is
a task in one nursery: it waits for the jobs that make its inputs, then for a slot of a
``CapacityLimiter`` (so up to ``parallel`` ffmpeg processes run at once), copies its inputs out
of the store into the work directory, probes them (the sandbox refuses anything outside the
limits), renders, imports the output into the store as UnixFS with ``dag.import_file``, signs a
``receipt`` and records ``cache id -> output`` in the step cache.

The content key of a media output is the hash of its decoded streams (``content_key``), so two
renders agree when their pictures and sound agree whatever the container bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

import dag
from dag import CID, Blockstore, ImportParams, cid_to_str, parse_cid
from provenance import Identity, sign_record

from .beats import ANALYSIS_RATE, beats_record, detect_beats, read_beats_record
from .content_key import content_key
from .effects import BEATS, effect_by_name, effect_cid
from .errors import RenderError
from .jobs import JobInput, build_job_graph
from .limits import Limits
from .planner import Plan, Step, fuse_chains, needed_steps
from .probe import MediaInfo, probe
from .records import make_receipt_record
from .sandbox import FfmpegInput, decode_audio_pcm, run_ffmpeg
from .step_cache import CachedStep, StepCache

__all__ = ["Executor", "RenderResult", "StepOutput"]

FrameProgress = Callable[[int], None]


@dataclass(frozen=True)
class StepOutput:
    cid: CID
    kind: str  # media | beats
    content_key: str
    receipt: CID
    cached: bool
    duration: float | None = None  # logical duration, for effects that need it (fade, mux)


@dataclass(frozen=True)
class _Made:
    """A step's output before its receipt: the CID, content key, kind, logical duration and
    the frames ffmpeg reported (0 when no ffmpeg job ran)."""

    cid: CID
    key: str
    kind: str
    duration: float | None
    frames: int = 0


@dataclass
class RenderResult:
    plan: Plan
    output: StepOutput
    outputs: dict[str, StepOutput]  # per materialised step
    rendered: list[str] = field(default_factory=list)  # step ids run this time
    cached: list[str] = field(default_factory=list)  # step ids taken from the cache
    frames: int = 0
    seconds: float = 0.0

    @property
    def receipts(self) -> list[CID]:
        return [o.receipt for o in self.outputs.values()]


class Executor:
    def __init__(
        self,
        store: Blockstore,
        cache: StepCache,
        identity: Identity,
        limits: Limits,
        workdir: Path,
        *,
        parallel: int = 2,
        fuse: bool = False,
        import_params: ImportParams | None = None,
        fault: str | None = None,
    ) -> None:
        if fault not in (None, "wrong-output"):
            raise ValueError(f"unknown test fault {fault!r}")
        self.store, self.cache, self.identity, self.limits = store, cache, identity, limits
        self.fault = fault  # test only: "wrong-output" renders a brightened picture
        self.workdir = Path(workdir)
        self.limiter = trio.CapacityLimiter(max(1, parallel))
        self.fuse = fuse
        self.import_params = import_params or ImportParams()
        self._files: dict[str, Path] = {}
        self._infos: dict[str, MediaInfo] = {}
        self._file_locks: dict[str, trio.Lock] = {}

    async def run(self, plan: Plan, progress: FrameProgress | None = None) -> RenderResult:
        started = time.monotonic()
        hits = await trio.to_thread.run_sync(
            self.cache.get_many, [cid_to_str(s.cache_id) for s in plan.steps.values()]
        )
        outputs: dict[str, StepOutput] = {}
        for step in plan.steps.values():
            hit = hits.get(cid_to_str(step.cache_id))
            if hit is not None and await self.store.has(parse_cid(hit.output)):
                outputs[step.id] = StepOutput(
                    parse_cid(hit.output),
                    hit.kind,
                    hit.content_key,
                    parse_cid(hit.receipt),
                    True,
                    hit.duration,
                )
        need = needed_steps(plan, set(outputs))
        jobs = fuse_chains(plan, need, self.fuse)
        result = RenderResult(plan, outputs.get(plan.output), outputs)  # type: ignore[arg-type]
        result.cached = [s for s in plan.steps if s in outputs and s not in need]
        done = {job[-1]: trio.Event() for job in jobs}
        frames: dict[str, int] = {}

        def advance(job_id: str, count: int) -> None:
            frames[job_id] = count
            if progress is not None:
                progress(sum(frames.values()))

        async def run_job(job: list[str]) -> None:
            chain = [plan.steps[i] for i in job]
            for ref in chain[0].inputs:
                if isinstance(ref, str) and ref in done:
                    await done[ref].wait()
            sources = [ref if isinstance(ref, CID) else outputs[ref].cid for ref in chain[0].inputs]
            known = [None if isinstance(r, CID) else outputs[r] for r in chain[0].inputs]
            async with self.limiter:
                out = await self._run_job(chain, sources, known, lambda n: advance(job[-1], n))
            outputs[job[-1]] = out
            result.rendered.extend(job)
            done[job[-1]].set()

        try:
            async with trio.open_nursery() as nursery:
                for job in jobs:
                    nursery.start_soon(run_job, job)
        except BaseExceptionGroup as group:  # one plain error for the caller
            raise dag.first_error(group) from None
        result.output = outputs[plan.output]
        result.frames = sum(frames.values())
        result.seconds = time.monotonic() - started
        order = list(plan.steps)
        result.rendered.sort(key=order.index)
        return result

    async def run_step(
        self,
        step: Step,
        sources: list[CID],
        known: list[StepOutput | None],
        progress: FrameProgress | None = None,
    ) -> StepOutput:
        """Run one step on inputs already in the store (a volunteer's render of a job).
        ``known`` gives, per input made by an earlier step, its kind and logical duration."""
        return await self._run_job([step], sources, known, progress or (lambda n: None))

    # -- one job -------------------------------------------------------------------------------
    async def _run_job(
        self,
        chain: list[Step],
        sources: list[CID],
        known: list[StepOutput | None],
        advance: FrameProgress,
    ) -> StepOutput:
        """Make the output of ``chain`` (one step, or a fused chain run as one ffmpeg job), then
        pin it and sign, store and cache its receipt."""
        last = chain[-1]
        began = time.monotonic()
        if last.effect.runs == "passthrough":
            made = await self._pass_through(last, sources, known)
        elif last.effect.runs == "analysis":
            made = await self._analyse(last, sources)
        else:
            made = await self._encode(chain, sources, known, advance)
        await self.store.pin(made.cid)
        receipt = make_receipt_record(
            cache_id=last.cache_id,
            operation=last.effect.name,
            effect=effect_cid(last.effect.name),
            params=last.params,
            inputs=sources,
            output=made.cid,
            content_key=made.key,
            milliseconds=int((time.monotonic() - began) * 1000),
            frames=made.frames,
            renderer=self.identity.did,
            fused=[s.cache_id for s in chain[:-1]],
        )
        block = dag.record_block(sign_record(receipt, self.identity))
        await self.store.put(block)
        # Direct: the output is pinned above, and a volunteer lacks the key blocks behind the
        # receipt's cache ids (the requester stores them, see planner.plan_key_blocks).
        await self.store.pin(block.cid, recursive=False)
        await self.store.flush()
        entry = CachedStep(
            cid_to_str(last.cache_id),
            cid_to_str(made.cid),
            cid_to_str(block.cid),
            made.key,
            made.kind,
            made.duration,
        )
        await trio.to_thread.run_sync(self.cache.put, entry)
        return StepOutput(made.cid, made.kind, made.key, block.cid, False, made.duration)

    async def _pass_through(
        self, last: Step, sources: list[CID], known: list[StepOutput | None]
    ) -> _Made:
        """``identity`` (its input) or ``asset`` (a CID already in the store) as the output."""
        out_cid = sources[0] if last.effect.name == "identity" else last.params["asset"]
        if not await self.store.has(out_cid):
            raise RenderError(f"step {last.id!r}: asset {cid_to_str(out_cid)} is not in the store")
        path, info = await self._materialise(out_cid)
        upstream = known[0] if last.effect.name == "identity" else None
        duration = info.duration if upstream is None else upstream.duration
        key = await content_key(path, self.limits)
        return _Made(out_cid, key, "media", duration)

    async def _analyse(self, last: Step, sources: list[CID]) -> _Made:
        """``analyze-beats``: the beat times of the input's sound, stored as a beats record."""
        path, info = await self._materialise(sources[0])
        if info.audio is None:
            raise RenderError(f"step {last.id!r}: analyze-beats needs audio, its input has none")
        pcm = await decode_audio_pcm(
            FfmpegInput(path, info), sample_rate=ANALYSIS_RATE, limits=self.limits
        )
        params = dict(last.params)
        times = await trio.to_thread.run_sync(
            lambda: detect_beats(
                pcm, ANALYSIS_RATE, sensitivity=params["sensitivity"], min_gap=params["min_gap"]
            )
        )
        block = dag.record_block(beats_record(sources[0], times, params))
        await self.store.put(block)
        return _Made(block.cid, cid_to_str(block.cid), BEATS, None)

    async def _encode(
        self,
        chain: list[Step],
        sources: list[CID],
        known: list[StepOutput | None],
        advance: FrameProgress,
    ) -> _Made:
        """One ffmpeg job for ``chain``, its output content-keyed and imported into the store."""
        last = chain[-1]
        job_sources: list[JobInput | list[float]] = []
        for cid, made in zip(sources, known, strict=True):
            if made is not None and made.kind == BEATS:
                value = dag.decode_dagcbor(await self.store.get(cid))
                try:
                    job_sources.append(read_beats_record(value))
                except ValueError as exc:
                    raise RenderError(f"step {chain[0].id!r}: {exc}") from None
            else:
                path, info = await self._materialise(cid)
                logical = made.duration if made is not None else None
                job_sources.append(JobInput(path, info, logical))
        graph = build_job_graph(chain, job_sources)
        target = self.workdir / f"out-{cid_to_str(last.cache_id)}{graph.suffix}"
        report = await run_ffmpeg(
            inputs=graph.inputs,
            filter_graph=graph.filter_graph,
            output_args=graph.output_args,
            output=target,
            limits=self.limits,
            progress=advance,
            hash_stream=0 if graph.has_video else None,  # video is output stream 0
        )
        duration = graph.duration
        hashed = {0: report.stream_hash} if report.stream_hash else None
        if self.fault == "wrong-output":
            target, hashed = await self._tamper(target, last, duration), None
        key, out_cid = await self._key_and_import(target, hashed)
        self._files[cid_to_str(out_cid)] = target
        return _Made(out_cid, key, "media", duration, report.frames)

    async def _tamper(self, target: Path, last: Step, duration: float | None) -> Path:
        """Test only (``artdag daemon --test-fault wrong-output``): the honest output run once
        more through a brightness shift, as a faulty or lying volunteer would deliver."""
        colour = effect_by_name("colour")
        step = Step(
            "fault", "fault", colour, {**colour.defaults(), "brightness": 0.3},
            (last.cache_id,), last.cache_id, last.final,
        )  # fmt: skip
        info = await probe(target, self.limits)
        graph = build_job_graph([step], [JobInput(target, info, duration)])
        tampered = target.with_name(f"fault-{target.name}")
        await run_ffmpeg(
            inputs=graph.inputs,
            filter_graph=graph.filter_graph,
            output_args=graph.output_args,
            output=tampered,
            limits=self.limits,
        )
        return tampered

    async def _key_and_import(
        self, target: Path, known: dict[int, str] | None = None
    ) -> tuple[str, CID]:
        """The content key (a sandboxed decode) and the import into the store, side by side."""
        found: dict[str, Any] = {}

        async def key() -> None:
            found["key"] = await content_key(target, self.limits, known=known)

        async def store() -> None:
            found["cid"] = (await dag.import_file(self.store, target, self.import_params)).cid

        async with trio.open_nursery() as nursery:
            nursery.start_soon(key)
            nursery.start_soon(store)
        return found["key"], found["cid"]

    async def probe_input(self, cid: CID) -> MediaInfo:
        """Probe a stored file (copied into the work directory once, like a step's input)."""
        return (await self._materialise(cid))[1]

    async def _materialise(self, cid: CID) -> tuple[Path, MediaInfo]:
        """The stored file ``cid`` as a local file (copied once per render), probed."""
        key = cid_to_str(cid)
        lock = self._file_locks.setdefault(key, trio.Lock())
        async with lock:
            if key not in self._files:
                path = self.workdir / f"in-{key}"
                with open(path, "wb") as f:
                    async for piece in dag.read_file(self.store, cid):
                        await trio.to_thread.run_sync(f.write, piece)
                self._files[key] = path
            path = self._files[key]
            if key not in self._infos:
                self._infos[key] = await probe(path, self.limits)
            return path, self._infos[key]
