"""The crash campaign (issue 16, finding 9): a real ``artdag daemon`` killed with SIGKILL at
random moments while a user works, restarted, and checked after every restart.

Theory of operation. One node home, one daemon on 127.0.0.1 with the fediverse bridge on
(http on loopback allowed) and, by default, the libp2p host (so our repo is appended and
gossiped the way the daemon does it). Three hand-built fediverse servers on 127.0.0.1
(:mod:`tests.harness.ap_remote`: they verify every HTTP signature against the key they fetch
from the daemon and count each activity id they receive) follow the node's creator first, two
through
shared inboxes and two actors with personal inboxes. Then, per kill of the seeded schedule
(:func:`kill_schedule`):

1. either the workload (:mod:`tests.harness.crash_workload`) runs for a random 0.3-4 s and the
   daemon's process group is SIGKILLed in the middle of it (and, for half the kills, every
   ``artdag``
   CLI process running then, as when the whole machine stops), or, for one kill in ten, the
   daemon is killed while it is still starting (recovering from the previous kill; the idle
   daemon before it is stopped with SIGKILL too);
2. the daemon is started again on the same home (a daemon that does not come back is a
   problem of the ``daemon restarts`` check and ends the campaign);
3. every check of :mod:`tests.harness.crash_checks` runs.

At the end the interrupted adds, renders and publishes are repeated once (as a user would),
the delivery queue is left to drain, the checks run a last time, with "every acknowledged
publish reached every inbox" and "every asset record of ours is chained", and the daemon is
stopped. Everything started here is stopped in ``finally`` blocks (process groups of the
daemon and of each CLI call, the inbox servers' threads); every loop is bounded in count
and time.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import trio

from tests.harness.ap_remote import RemoteServer, remote_server
from tests.harness.crash_checks import CHECK_KINDS, Findings, Ledger, check_deliveries, run_checks
from tests.harness.crash_inputs import make_inputs
from tests.harness.crash_workload import CLI_TIMEOUT_S, OP_KINDS, OpStats, Workload
from tests.harness.daemons import ARTDAG, DaemonProcess

__all__ = ["CampaignResult", "CampaignSettings", "KillPlan", "kill_schedule", "run_campaign"]

DRAIN_TIMEOUT_S = 120.0
FOLLOW_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KillPlan:
    at_startup: bool  # kill the daemon while it starts, not during the workload
    delay_s: float  # after the workload started (or after the daemon was spawned)
    local_too: bool  # kill the running CLI processes as well


def kill_schedule(
    kills: int, seed: int, window_s: tuple[float, float] = (0.3, 4.0)
) -> list[KillPlan]:
    """The campaign's kills, the same for the same seed."""
    rng = random.Random(f"kills-{seed}")
    plans = []
    for _ in range(kills):
        at_startup = rng.random() < 0.1
        delay = rng.uniform(0.05, 1.5) if at_startup else rng.uniform(*window_s)
        plans.append(KillPlan(at_startup, round(delay, 3), rng.random() < 0.5))
    return plans


@dataclass
class CampaignSettings:
    workdir: Path
    kills: int = 100
    seed: int = 0
    p2p: bool = True
    gc_grace_s: float = 20.0  # above the longest CLI operation: the CLI's only protection
    max_seconds: float = 3 * 3600.0
    window_s: tuple[float, float] = (0.3, 4.0)


@dataclass
class CampaignResult:
    kills: int = 0
    seconds: float = 0.0
    ops: dict[str, OpStats] = field(default_factory=dict)
    findings: Findings = field(default_factory=Findings)
    restart_s: list[float] = field(default_factory=list)
    stopped_early: str = ""

    @property
    def failed_ops(self) -> int:
        return sum(s.failed for s in self.ops.values())

    def summary(self) -> str:
        f = self.findings
        return (
            f"kills={self.kills} corrupt={f.total('corrupt')} lost={f.total('lost')} "
            f"duplicated={f.total('duplicated')} resent={f.resent} "
            f"unchained={f.total('unchained')} failed_ops={self.failed_ops} "
            f"seconds={self.seconds:.0f}"
        )

    def report(self) -> list[str]:
        """The tables: operations by kind, checks by name, then any problem and error."""
        lines = [f"{'operation':<10} {'started':>8} {'completed':>10} {'interrupted':>12} "
                 f"{'failed':>7}"]  # fmt: skip
        for kind in OP_KINDS:
            s = self.ops.get(kind, OpStats())
            lines.append(
                f"{kind:<10} {s.started:>8} {s.completed:>10} {s.interrupted:>12} {s.failed:>7}"
            )
        lines.append("")
        lines.append(f"{'check':<34} {'kind':<11} {'runs':>5} {'problems':>9}")
        for check, kind in CHECK_KINDS.items():
            found = self.findings.problems[check]
            lines.append(f"{check:<34} {kind:<11} {self.findings.runs[check]:>5} {len(found):>9}")
        works, inboxes, got = self.findings.delivered
        lines.append(
            f"deliveries: {works} acknowledged publishes x {inboxes} inboxes; {got} verified"
            f" Creates received, {self.findings.resent} of them a resend of an activity id the"
            f" inbox already had; {self.findings.unverified} POSTs the inbox could not verify"
            " (the sender was killed before the inbox fetched its key)"
        )
        if self.restart_s:
            lines.append(
                f"restart to ready: median {sorted(self.restart_s)[len(self.restart_s) // 2]:.1f}"
                f" s, max {max(self.restart_s):.1f} s over {len(self.restart_s)} restarts"
            )
        for check, found in self.findings.problems.items():
            for problem in sorted(found)[:20]:
                lines.append(f"problem [{check}] {problem}")
        if self.findings.cache_id_pins:
            lines.append(
                f"note: artdag verify called {len(self.findings.cache_id_pins)} pins incomplete"
                " that lack only blocks named by cache_id links (step-cache keys, never stored;"
                f" not counted), e.g. {min(self.findings.cache_id_pins)}"
            )
        for kind, s in self.ops.items():
            for error in s.errors[:5]:
                lines.append(f"error [{kind}] {error}")
        if self.stopped_early:
            lines.append(f"stopped early: {self.stopped_early}")
        return lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def campaign_daemon(home: Path, settings: CampaignSettings) -> DaemonProcess:
    port = _free_port()
    return DaemonProcess(
        home,
        ARTDAG_PORT=str(port),
        ARTDAG_USER="alice",
        ARTDAG_DOMAIN=f"http://127.0.0.1:{port}",
        ARTDAG_AP_ALLOW_HTTP_LOOPBACK="true",
        ARTDAG_AP_ALLOW_PRIVATE_FETCH="true",
        ARTDAG_P2P="true" if settings.p2p else "false",
        ARTDAG_GC_GRACE_SECONDS=str(settings.gc_grace_s),
    )


class _Aborted(Exception):
    pass


@dataclass
class _Campaign:
    settings: CampaignSettings
    daemon: DaemonProcess
    servers: list[RemoteServer]
    ledger: Ledger
    result: CampaignResult
    progress: Callable[[str], None]
    workload: Workload | None = None

    async def restart(self) -> None:
        for attempt in range(3):
            started = time.monotonic()
            try:
                await trio.to_thread.run_sync(self.daemon.restart)
            except RuntimeError as exc:
                tail = str(exc).strip().splitlines()[-1:] or ["?"]
                self.result.findings.add("daemon restarts", {f"restart failed: {tail[0]}"})
                self.progress(f"restart {attempt + 1} failed: {exc}")
                continue
            self.result.restart_s.append(time.monotonic() - started)
            self.result.findings.add("daemon restarts", set())
            return
        raise _Aborted("the daemon did not restart three times in a row")

    async def check(self, *, final: bool = False) -> None:
        did = self.daemon.info["did"]
        env = self.daemon.env()
        findings = self.result.findings
        await run_checks(self.daemon.home, did, ARTDAG, env, self.ledger, findings, final=final)
        check_deliveries(self.servers, self.ledger, findings, final=final)

    async def kill_during_startup(self, delay: float) -> None:
        proc = subprocess.Popen(
            [ARTDAG, "daemon"], env=self.daemon.env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            await trio.sleep(delay)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)  # not awaited: this must run even when cancelled

    async def kill_during_work(self, plan: KillPlan) -> None:
        assert self.workload is not None
        workload = self.workload
        async with trio.open_nursery() as nursery:
            nursery.start_soon(workload.run)
            await trio.sleep(plan.delay_s)
            workload.kill(local_too=plan.local_too)
            await trio.to_thread.run_sync(self.daemon.kill)
            nursery.cancel_scope.deadline = trio.current_time() + CLI_TIMEOUT_S + 30

    async def follow(self) -> None:
        actor = self.daemon.api_url + "/users/alice"
        wanted = []
        for server in self.servers:
            for name in server.names:
                follow = server.follow(actor, name)
                post = partial(
                    server.signed_post, self.daemon.api_url + "/inbox", follow, name=name
                )
                response = await trio.to_thread.run_sync(post)
                if response.status_code != 202:
                    raise _Aborted(f"Follow by {name} refused: {response.text}")
                wanted.append((server, name))
                shared = f"{server.url}/inbox"
                self.ledger.inboxes.add(
                    shared if server.shared_inbox else actor_inbox(server, name)
                )
        with trio.move_on_after(FOLLOW_TIMEOUT_S):
            while not all(
                any(f"/users/{n}/inbox" in r.path for r in s.of_type("Accept")) for s, n in wanted
            ):
                await trio.sleep(0.1)
            return
        raise _Aborted("the Accepts of the follows did not arrive")

    async def drain(self) -> None:
        headers = {"Authorization": f"Bearer {self.daemon.token}"}
        async with httpx.AsyncClient(base_url=self.daemon.api_url, headers=headers) as client:
            with trio.move_on_after(DRAIN_TIMEOUT_S):
                while True:
                    stats = (await client.get("/api/v1/activitypub/deliveries")).json()["stats"]
                    if stats["queued"] == 0 and stats["in-flight"] == 0:
                        return
                    await trio.sleep(0.5)
        self.progress(f"the delivery queue did not drain in {DRAIN_TIMEOUT_S:.0f} s: {stats}")


def actor_inbox(server: RemoteServer, name: str) -> str:
    return f"{server.url}/users/{name}/inbox"


async def run_campaign(
    settings: CampaignSettings, progress: Callable[[str], None] = lambda line: None
) -> CampaignResult:
    started = time.monotonic()
    result = CampaignResult()
    inputs = await make_inputs(settings.workdir / "inputs", settings.seed)
    daemon = campaign_daemon(settings.workdir / "home", settings)
    plans = kill_schedule(settings.kills, settings.seed, settings.window_s)
    with ExitStack() as stack:
        servers = [
            stack.enter_context(remote_server(("anna",))),
            stack.enter_context(remote_server(("bert",))),
            stack.enter_context(remote_server(("c1", "c2"), shared_inbox=False)),
        ]
        ledger = Ledger()
        run = _Campaign(settings, daemon, servers, ledger, result, progress)
        scratch = settings.workdir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        workload = Workload(daemon, inputs, ledger, random.Random(f"work-{settings.seed}"), scratch)
        run.workload = workload
        result.ops = workload.ops
        try:
            await trio.to_thread.run_sync(daemon.start)
            await run.follow()
            for clip in inputs.clips:
                cid = (await workload.cli("add", str(clip)))[-1]
                inputs.clip_cids.append(cid)
                ledger.assets[cid] = f"setup {clip.name}"
            await run.check()
            for i, plan in enumerate(plans):
                if time.monotonic() - started > settings.max_seconds:
                    result.stopped_early = f"time budget of {settings.max_seconds:.0f} s spent"
                    break
                cycle = time.monotonic()
                if plan.at_startup:
                    await trio.to_thread.run_sync(daemon.kill)
                    await run.kill_during_startup(plan.delay_s)
                else:
                    await run.kill_during_work(plan)
                result.kills += 1
                killed = time.monotonic()
                await run.restart()
                restarted = time.monotonic()
                await run.check()
                progress(
                    f"kill {i + 1}/{len(plans)} ({'startup' if plan.at_startup else 'work'}"
                    f" +{plan.delay_s:.1f}s{', cli too' if plan.local_too else ''}): work"
                    f" {killed - cycle:.1f} s, restart {restarted - killed:.1f} s, checks"
                    f" {time.monotonic() - restarted:.1f} s; {result.summary()}"
                )
            await workload.repeat_interrupted()
            await run.drain()
            await run.check(final=True)
            await trio.to_thread.run_sync(daemon.stop)
        except _Aborted as exc:
            result.stopped_early = str(exc)
        finally:  # synchronous, so that it also runs when the campaign is cancelled
            workload.kill(local_too=True)
            daemon.kill()
    result.seconds = time.monotonic() - started
    return result
