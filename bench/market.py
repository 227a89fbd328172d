"""Render-market benchmark: the cost of a step on a volunteer, and one vs three volunteers.

    .venv/bin/python -m bench.market [--steps 5] [--seconds 8] [--keep]

Real ``artdag daemon`` processes on 127.0.0.1 (tests/harness/daemons.py): a requester and volunteers
(``ARTDAG_VOLUNTEER=true``) bootstrapped to it; every daemon runs with ``ARTDAG_IDLE_LOAD=0``
(a busy machine still volunteers), ``ARTDAG_LEASE_SECONDS=10``, ``ARTDAG_HEARTBEAT_SECONDS=2``.
Renders go through ``POST /api/v1/render`` (what ``artdag render --remote`` calls, minus the
CLI's start-up); inputs are 320x180, 25 fps H.264 + AAC test clips (tests/harness/media.py).

1. Per-step overhead: the requester and ONE volunteer. A one-step recipe (``segment`` of
   ``--seconds``/8 s) is rendered remotely ``--steps`` times, each with another ``start`` so
   the step's cache id is new and it really renders (one untimed warm-up before, which also
   brings the clip to the volunteer). From each job's row (``GET /api/v1/jobs/<id>``): the
   phases offer (gossip of the job -> first offer), lease (-> lease granted), work minus the
   render time in the volunteer's receipt (input check or fetch, result gossip: the part of
   the volunteer's work that is not rendering), fetch (output by bitswap), verify (decode +
   content key); overhead = total - render. Baseline: the same
   recipe rendered in-process by ``daemon.core.render.service.RenderService`` on a temp store
   (load, plan, sandboxed ffmpeg, content key, import, receipts, provenance), fresh ``start``
   each time too. All figures are medians.
2. Step parallelism: an 8-segment recipe (8 ``segment`` nodes joined by a ``sequence``; the
   planner makes 8 independent segments + 7 two-clip joins, every one a job) on the ONE
   volunteer, then on THREE (two more volunteers join). Each run uses its own freshly made
   clip (another CID, so every cache id is new and every volunteer fetches the clip by
   bitswap); the bench checks that the ``done`` event lists no cached step and that every step
   was rendered. Wall time of the render request, the speed-up, and how many distinct
   volunteers did steps. For scale, the same recipe rendered in-process once. Beside each run:
   the volunteers' render seconds summed over the receipts, the CPU seconds of all daemons and
   their ffmpeg children (psutil), and the machine's busy cores: on this 2-core box the
   volunteers share the CPU, which these figures make visible.

The last line is the summary:
``step_overhead_s=... local_step_s=... one_volunteer_s=... three_volunteers_s=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import trio

import dag
from daemon.core.render.service import RenderService
from provenance import Identity
from renderer import Limits
from tests.harness.daemons import DaemonProcess, wait_until
from tests.harness.media import make_video

ENV: dict[str, Any] = {
    "ARTDAG_IDLE_LOAD": "0",
    "ARTDAG_LEASE_SECONDS": "10",
    "ARTDAG_HEARTBEAT_SECONDS": "2",
}
VOLUNTEER: dict[str, Any] = {**ENV, "ARTDAG_VOLUNTEER": "true"}
SEGMENTS = 8
FRAME = 0.04  # one frame at 25 fps: the step of ``start`` between runs
RENDER_TIMEOUT_S = 600.0
PHASES = ("offer", "lease", "work - render", "fetch", "verify")


# -- recipes ---------------------------------------------------------------------------------
def one_step_yaml(length: float) -> str:
    return (
        "name: market-one-step\ninputs: [clip]\nnodes:\n"
        "  cut:\n    effect: segment\n    input: clip\n"
        f"    params: {{start: 0, duration: {length}}}\n"
        "output: cut\n"
    )


def eight_segments_yaml(length: float) -> str:
    lines = ["name: market-eight-segments", "inputs: [clip]", "nodes:"]
    for i in range(SEGMENTS):
        lines += [
            f"  s{i}:",
            "    effect: segment",
            "    input: clip",
            f"    params: {{start: {round(i * length, 3)}, duration: {length}}}",
        ]
    names = ", ".join(f"s{i}" for i in range(SEGMENTS))
    lines += ["  reel:", "    effect: sequence", f"    inputs: [{names}]", "output: reel", ""]
    return "\n".join(lines)


# -- remote renders through the daemon -------------------------------------------------------
@dataclass
class RemoteRun:
    seconds: float  # wall time of the render request
    done: dict[str, Any]
    jobs: list[str] = field(default_factory=list)  # job ids published, in order
    how: dict[str, str] = field(default_factory=dict)  # step -> remote | cached | reused | local


def render_remote(
    requester: DaemonProcess, recipe: Path, clip: str, params: dict[str, Any]
) -> RemoteRun:
    body = {"recipe": str(recipe), "inputs": {"clip": clip}, "params": params}
    run = RemoteRun(0.0, {})
    start = time.perf_counter()
    with (
        requester.http(timeout=RENDER_TIMEOUT_S) as client,
        client.stream("POST", "/api/v1/render", json=body) as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"render request refused: {response.read().decode()}")
        for line in response.iter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            if "error" in event:
                raise RuntimeError(f"remote render failed: {event['error']}")
            if "done" in event:
                run.done = event["done"]
                break
            if event.get("status") == "published":
                run.jobs.append(event["job"])
            elif "status" in event and event["status"] != "done":
                run.how[event["step"]] = event["status"]
    run.seconds = time.perf_counter() - start
    if not run.done:
        raise RuntimeError("the daemon closed the render stream without a result")
    return run


def job_row(requester: DaemonProcess, job_id: str) -> dict[str, Any]:
    body = requester.api("GET", f"/api/v1/jobs/{job_id}").json()
    return next(j for j in body["jobs"] if j["role"] == "requester")


def check_all_rendered(run: RemoteRun, steps: int, what: str) -> None:
    """Nothing cached or reused: every step was a job some volunteer rendered."""
    if run.done["cached"]:
        raise RuntimeError(f"{what}: steps {run.done['cached']} came from a cache")
    remote = [s for s, how in run.how.items() if how == "remote"]
    if len(run.done["rendered"]) != steps or len(remote) != steps:
        raise RuntimeError(
            f"{what}: expected {steps} remotely rendered steps, got {run.how} / {run.done}"
        )


def volunteers_saw(volunteers: list[DaemonProcess], job_id: str) -> bool:
    """Every volunteer has a row for the job: the job gossip reaches each of them."""
    for v in volunteers:
        rows = v.api("GET", "/api/v1/jobs", params={"role": "volunteer"}).json()["jobs"]
        if not any(r["job_id"] == job_id for r in rows):
            return False
    return True


def join_market(
    requester: DaemonProcess, volunteers: list[DaemonProcess], recipe: Path, clip: str, start: float
) -> None:
    """Wait until the volunteers are connected, then one untimed step that all of them see."""
    wanted = {v.peer_id for v in volunteers}
    wait_until(
        lambda: wanted <= {p["peer_id"] for p in requester.peers()}, 60, "volunteers connected"
    )
    time.sleep(2)  # a couple of 1 s gossipsub heartbeats so the jobs topic mesh is grafted
    warm = render_remote(requester, recipe, clip, {"cut.start": start})
    wait_until(
        lambda: volunteers_saw(volunteers, warm.jobs[0]), 30, "job gossip at every volunteer"
    )


# -- where the CPU goes -----------------------------------------------------------------------
@dataclass(frozen=True)
class CpuUse:
    daemons_s: float  # CPU seconds of the daemons and their reaped children (ffmpeg)
    busy_cores: float  # the whole machine's busy cores over the interval (others' work too)


def cpu_snapshot(daemons: list[DaemonProcess]) -> tuple[float, float, float]:
    total = 0.0
    for d in daemons:
        t = psutil.Process(d.pid).cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
    machine = psutil.cpu_times()
    return total, time.monotonic(), machine.user + machine.system + machine.nice


def cpu_since(daemons: list[DaemonProcess], before: tuple[float, float, float]) -> CpuUse:
    after = cpu_snapshot(daemons)
    wall = after[1] - before[1]
    return CpuUse(after[0] - before[0], (after[2] - before[2]) / wall)


def idle_cpu(daemons: list[DaemonProcess], seconds: float = 2.0) -> float:
    """CPU seconds per second the daemons burn with no job open (gossip, DHT, heartbeats)."""
    before = cpu_snapshot(daemons)
    time.sleep(seconds)
    used = cpu_since(daemons, before).daemons_s
    return used / seconds


def rendered_seconds(job_rows: list[dict[str, Any]]) -> float:
    return sum(r["timings"]["render"] for r in job_rows)


# -- local renders in-process ----------------------------------------------------------------
async def local_renders(
    work: Path, source: Path, recipe: Path, params: list[dict[str, Any]]
) -> list[float]:
    """Render ``recipe`` once per params in one fresh in-process service (first run untimed)."""
    store = dag.FlatFsBlockstore(work / "store")
    service = RenderService(store, Identity.generate(), work / "index.db", Limits(), workroot=work)
    try:
        clip = (await dag.import_file(store, source)).cid
        await service.add_recipe_file(recipe)
        seconds = []
        for p in params:
            started = time.perf_counter()
            outcome = await service.render(str(recipe), {"clip": clip}, p)
            seconds.append(time.perf_counter() - started)
            if outcome.cached:
                raise RuntimeError(f"local render with {p} was cached")
        return seconds[1:]
    finally:
        service.close()
        await store.aclose()


# -- the bench -------------------------------------------------------------------------------
def median_of(rows: list[dict[str, Any]], phase: Callable[[dict[str, float]], float]) -> float:
    return statistics.median(phase(r["timings"]) for r in rows)


def phase_of(name: str) -> Callable[[dict[str, float]], float]:
    if name == "work - render":
        return lambda t: t["work"] - t["render"]
    return lambda t: t[name]


def upload(requester: DaemonProcess, path: Path) -> str:
    return str(requester.add_bytes(path.read_bytes(), path.name)["cid"])


def run(args: argparse.Namespace, root: Path) -> None:
    seconds, n = args.seconds, args.steps
    length = round(seconds / SEGMENTS, 3)
    recipes = root / "recipes"
    recipes.mkdir()
    one_step = recipes / "one-step.yaml"
    one_step.write_text(one_step_yaml(length))
    eight = recipes / "eight-segments.yaml"
    eight.write_text(eight_segments_yaml(length))
    media = root / "media"
    media.mkdir()
    margin = FRAME * (n + 2)  # room for the shifted starts of part 1
    clip_steps = make_video(media / "steps.mp4", seconds + margin, container="mp4")
    clip_one = make_video(media / "one.mp4", seconds, container="mp4")
    clip_three = make_video(media / "three.mp4", seconds + FRAME, container="mp4")  # another CID
    print(
        f"clips: {seconds:g} s 320x180 25 fps H.264 + AAC ({clip_one.stat().st_size} bytes); "
        f"step = segment of {length:g} s; {os.cpu_count()} CPUs"
    )

    # local baselines first, while no daemon competes for the CPU
    starts = [round(FRAME * (i + 1), 3) for i in range(n)]
    local_work = root / "local"
    local_work.mkdir()
    local = trio.run(
        local_renders,
        local_work,
        clip_steps,
        one_step,
        [{"cut.start": 0}] + [{"cut.start": s} for s in starts],
    )
    local_eight_work = root / "local-eight"
    local_eight_work.mkdir()
    local_eight = trio.run(
        local_renders,
        local_eight_work,
        clip_one,
        eight,
        # a warm-up with other cache ids everywhere (shorter segments), then the timed render
        [{f"s{i}.duration": length - FRAME for i in range(SEGMENTS)}, {}],
    )[0]

    daemons: list[DaemonProcess] = []
    try:
        requester = DaemonProcess(root / "requester", **ENV).start()
        daemons.append(requester)
        boot = [requester.p2p_addr]
        v1 = DaemonProcess(root / "v1", bootstrap=boot, args=("--volunteer",), **VOLUNTEER).start()
        daemons.append(v1)
        cid_steps, cid_one, cid_three = (
            upload(requester, c) for c in (clip_steps, clip_one, clip_three)
        )
        join_market(requester, [v1], one_step, cid_steps, 0.0)
        idle_one = idle_cpu(daemons)

        # 1. per-step overhead on one volunteer
        rows = []
        walls = []
        for s in starts:
            step_run = render_remote(requester, one_step, cid_steps, {"cut.start": s})
            check_all_rendered(step_run, 1, f"one step, start {s}")
            rows.append(job_row(requester, step_run.jobs[0]))
            walls.append(step_run.seconds)

        # 2a. eight segments on the one volunteer
        before = cpu_snapshot(daemons)
        one = render_remote(requester, eight, cid_one, {})
        one_cpu = cpu_since(daemons, before)
        check_all_rendered(one, 2 * SEGMENTS - 1, "eight segments, one volunteer")

        # 2b. the same on three volunteers (two join)
        v2 = DaemonProcess(root / "v2", bootstrap=boot, args=("--volunteer",), **VOLUNTEER).start()
        daemons.append(v2)
        v3 = DaemonProcess(root / "v3", bootstrap=boot, args=("--volunteer",), **VOLUNTEER).start()
        daemons.append(v3)
        join_market(requester, [v1, v2, v3], one_step, cid_steps, round(FRAME * (n + 1), 3))
        idle_three = idle_cpu(daemons)
        before = cpu_snapshot(daemons)
        three = render_remote(requester, eight, cid_three, {})
        three_cpu = cpu_since(daemons, before)
        check_all_rendered(three, 2 * SEGMENTS - 1, "eight segments, three volunteers")
        three_rows = [job_row(requester, j) for j in three.jobs]
        one_rows = [job_row(requester, j) for j in one.jobs]
    except Exception:
        for d in daemons:
            print(f"--- log of {d.home.name}:\n{d.log()}", file=sys.stderr)
        raise
    finally:
        for d in daemons:
            d.stop()

    names = {v1.info["did"]: "v1", v2.info["did"]: "v2", v3.info["did"]: "v3"}

    def spread(job_rows: list[dict[str, Any]]) -> dict[str, int]:
        count: dict[str, int] = {}
        for r in job_rows:
            for did in r["volunteers"]:
                count[names.get(did, did[-8:])] = count.get(names.get(did, did[-8:]), 0) + 1
        return dict(sorted(count.items()))

    def shown(count: dict[str, int]) -> str:
        return " ".join(f"{name}:{k}" for name, k in count.items())

    overhead = statistics.median(r["timings"]["total"] - r["timings"]["render"] for r in rows)
    render_s = median_of(rows, phase_of("render"))
    local_s = statistics.median(local)
    print()
    print(f"1. one step on one volunteer (median of {n}; segment of {length:g} s)")
    print(f"   {'phase':<44}{'seconds':>10}")
    for name in PHASES:
        print(f"   {name:<44}{median_of(rows, phase_of(name)):>10.3f}")
    print(f"   {'render on the volunteer (receipt)':<44}{render_s:>10.3f}")
    print(f"   {'job total (gossip -> verified)':<44}{median_of(rows, phase_of('total')):>10.3f}")
    print(f"   {'overhead = total - render':<44}{overhead:>10.3f}")
    print(f"   {'remote render request, wall':<44}{statistics.median(walls):>10.3f}")
    print(f"   {'same step rendered locally (in-process)':<44}{local_s:>10.3f}")
    print(f"   {'overhead / local':<44}{overhead / local_s:>10.2f}")
    print()
    print(f"2. eight segments ({SEGMENTS} segments + {SEGMENTS - 1} joins = 15 jobs), wall")
    print(
        f"   {'setup':<20}{'wall s':>9}{'render s':>10}{'CPU s':>8}{'busy cores':>12}"
        f"   steps by volunteer"
    )
    for label, remote, job_rows, cpu in (
        ("one volunteer", one, one_rows, one_cpu),
        ("three volunteers", three, three_rows, three_cpu),
    ):
        print(
            f"   {label:<20}{remote.seconds:>9.3f}{rendered_seconds(job_rows):>10.2f}"
            f"{cpu.daemons_s:>8.2f}{cpu.busy_cores:>12.2f}   {shown(spread(job_rows))}"
        )
    print(f"   {'local in-process':<20}{local_eight:>9.3f}   (for scale: 2 steps at a time)")
    print(f"   speed-up one / three: {one.seconds / three.seconds:.2f}")
    print(f"   distinct volunteers that did steps with three: {len(spread(three_rows))}")
    print(
        "   render s: the volunteers' render seconds summed over the 15 receipts; CPU s: CPU"
        " time of all daemons\n   and their ffmpeg children in the run; busy cores: the whole"
        " machine's, other users included."
    )
    print(
        f"   idle daemons (no job open): {idle_one:.2f} CPU-s/s with one volunteer,"
        f" {idle_three:.2f} with three"
    )
    print(
        f"note: this machine has {os.cpu_count()} cores, shared by the requester, the volunteers"
        " (rendering at niceness 10) and\n"
        f"      other users' work. With three volunteers it was {three_cpu.busy_cores:.2f} cores"
        f" busy and the same 15 steps took {rendered_seconds(three_rows):.1f} s\n"
        f"      of render time instead of {rendered_seconds(one_rows):.1f} s: the volunteers"
        " contend for CPU, so the speed-up is bounded by the\n"
        "      cores of one box; volunteers on separate machines would not share them (not"
        " measured here)."
    )
    print(
        f"step_overhead_s={overhead:.3f} local_step_s={local_s:.3f} "
        f"one_volunteer_s={one.seconds:.3f} three_volunteers_s={three.seconds:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="remote one-step renders (N)")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    if args.steps < 1 or args.seconds < 1:
        parser.error("--steps must be >= 1 and --seconds >= 1")
    root = Path(tempfile.mkdtemp(prefix="artdag-bench-market-"))
    try:
        run(args, root)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
