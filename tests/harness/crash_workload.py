"""The crash campaign's workload: what a user does to the node while it is being killed.

Lanes run at once until :meth:`Workload.stop` (called at the kill), each one operation at a
time, as a user would run them:

- ``add``: ``artdag add FILE`` (the CLI opens the node itself, beside the daemon);
- ``api-add``: ``POST /api/v1/assets`` (an upload through the daemon);
- ``import`` / ``render``: ``artdag import CAR`` and ``artdag render`` of a tiny recipe;
- ``publish``, ``pin-add``, ``pin-rm``: the daemon's API, what ``artdag publish`` and ``artdag
  pin add|rm`` call;
- ``gc``: ``POST /api/v1/gc`` (what ``artdag gc`` calls while the daemon runs).

An operation that succeeds updates the :class:`~tests.harness.crash_checks.Ledger` (what the checks
then demand). One that fails after a kill happened during it counts as *interrupted*: its
effect is unknown, so its CID's expected pin state becomes unknown, and an interrupted add or
publish is retried later with the same file or work (as a user would, which also checks that
a retry creates no second record or activity). A failure with no kill during it is a *failed*
operation, reported with its message. The pin lanes never touch a CID another lane is busy
with, so the expected state of each CID is well defined.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.harness.crash_checks import Ledger
from tests.harness.crash_inputs import CarFile, InputFile, Inputs
from tests.harness.daemons import ARTDAG, DaemonProcess

__all__ = ["OP_KINDS", "OpFailed", "OpStats", "Workload"]

OP_KINDS = ("add", "api-add", "import", "render", "publish", "pin-add", "pin-rm", "gc")
CLI_TIMEOUT_S = 120.0
API_TIMEOUT_S = 60.0
ERRORS_KEPT = 20


class OpFailed(Exception):
    """An operation did not succeed (an error answer, a lost connection, a non-zero exit)."""


@dataclass
class OpStats:
    started: int = 0
    completed: int = 0
    interrupted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


_INTERRUPTED = object()  # a kill happened while the operation ran, and it failed
_SKIPPED = object()  # the kill came first: the operation never started


@dataclass
class Workload:
    daemon: DaemonProcess
    inputs: Inputs
    ledger: Ledger
    rng: random.Random
    scratch: Path
    ops: dict[str, OpStats] = field(default_factory=lambda: {k: OpStats() for k in OP_KINDS})
    epoch: int = 0  # kills so far: an op whose epoch changed while it ran was interrupted
    retry_adds: list[tuple[str, InputFile]] = field(default_factory=list)
    retry_publish: list[str] = field(default_factory=list)
    retry_renders: list[tuple[str, float]] = field(default_factory=list)  # (clip, factor)
    car_state: dict[str, str] = field(default_factory=dict)  # CAR root -> new/pinned/released/?
    pin_targets: list[str] = field(default_factory=list)  # asset roots the pin lane may use
    busy: set[str] = field(default_factory=set)
    _local: set[trio.Process] = field(default_factory=set)
    _stop: trio.Event = field(default_factory=trio.Event)
    _outputs: int = 0

    # -- running one operation -----------------------------------------------------------------
    async def _op(self, kind: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self._stop.is_set():
            return _SKIPPED
        stats = self.ops[kind]
        stats.started += 1
        epoch = self.epoch
        try:
            result = await fn()
        except OpFailed as exc:
            if self.epoch != epoch:
                stats.interrupted += 1
                return _INTERRUPTED
            stats.failed += 1
            if len(stats.errors) < ERRORS_KEPT:
                stats.errors.append(str(exc)[:300])
            return None
        stats.completed += 1
        return result

    async def cli(self, *args: str) -> list[str]:
        """Run ``artdag ARGS`` in its own process group; its stdout lines."""
        self._outputs += 1
        out, err = self.scratch / f"op{self._outputs}.out", self.scratch / f"op{self._outputs}.err"
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = await trio.lowlevel.open_process(
                [ARTDAG, *args], env=self.daemon.env(), stdout=fo, stderr=fe,
                start_new_session=True,
            )  # fmt: skip
        self._local.add(proc)
        try:
            with trio.move_on_after(CLI_TIMEOUT_S):
                await proc.wait()
        finally:
            self._local.discard(proc)
            if proc.returncode is None:
                _killpg(proc.pid)
                with trio.CancelScope(shield=True):
                    await proc.wait()
        lines = out.read_text(errors="replace").splitlines()
        error = err.read_text(errors="replace").strip().splitlines()
        out.unlink()
        err.unlink()
        if proc.returncode != 0:
            tail = error[-1] if error else ""
            raise OpFailed(f"artdag {args[0]} exited {proc.returncode}: {tail}")
        return lines

    async def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.daemon.token}"}
        try:
            async with httpx.AsyncClient(
                base_url=self.daemon.api_url, headers=headers, timeout=API_TIMEOUT_S
            ) as client:
                response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OpFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise OpFailed(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response.json()

    # -- the kill --------------------------------------------------------------------------
    def kill(self, *, local_too: bool) -> int:
        """The kill: no more operations start; with ``local_too`` the running CLI processes
        die as well (a crash of the whole node); return how many were killed."""
        self.epoch += 1
        self._stop.set()
        killed = 0
        if local_too:
            for proc in list(self._local):
                _killpg(proc.pid)
                killed += 1
        return killed

    def resume(self) -> None:
        """Operations may start again (after a kill)."""
        self._stop = trio.Event()

    async def run(self) -> None:
        """Every lane until :meth:`kill`; returns when the last operation has ended."""
        self.resume()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._add_lane, "add")
            nursery.start_soon(self._add_lane, "api-add")
            nursery.start_soon(self._import_render_lane)
            nursery.start_soon(self._daemon_lane)
            nursery.start_soon(self._gc_lane)

    async def _pause(self, low: float, high: float) -> None:
        with trio.move_on_after(self.rng.uniform(low, high)):
            await self._stop.wait()

    # -- lanes -----------------------------------------------------------------------------
    async def _add_lane(self, kind: str) -> None:
        while not self._stop.is_set():
            retry = next((r for r in self.retry_adds if r[0] == kind), None)
            if retry is not None:
                self.retry_adds.remove(retry)
                file = retry[1]
            else:
                file = self.inputs.new_file()
            result = await self._op(kind, partial(self._add, kind, file))
            if result is _INTERRUPTED or result is _SKIPPED or result is None:
                self.retry_adds.append((kind, file))
            else:
                self.ledger.assets[result] = f"{kind} {file.name}"
                self.ledger.pinned[result] = True
                self.pin_targets.append(result)
            await self._pause(0.0, 0.3)

    async def _add(self, kind: str, file: InputFile) -> str:
        if kind == "add":
            return (await self.cli("add", str(file.path), "--name", file.name))[-1]
        body = await trio.to_thread.run_sync(file.path.read_bytes)
        added = await self._api("POST", "/api/v1/assets", params={"name": file.name}, content=body)
        return str(added["cid"])

    async def _import_render_lane(self) -> None:
        while not self._stop.is_set():
            free = [c for c in self.inputs.cars if self.car_state.get(c.root, "new") != "pinned"]
            free = [c for c in free if c.root not in self.busy]
            if free and self.rng.random() < 0.7:
                await self._import(self.rng.choice(free))
            else:
                await self._render()
            await self._pause(0.0, 0.3)

    async def _import(self, car: CarFile) -> None:
        self.busy.add(car.root)
        try:
            result = await self._op("import", lambda: self.cli("import", str(car.path)))
        finally:
            self.busy.discard(car.root)
        if result is _INTERRUPTED:
            self.car_state[car.root] = "?"
            self.ledger.pinned[car.root] = None
        elif isinstance(result, list):
            if result[-1:] != [car.root]:
                self.ops["import"].errors.append(f"import printed {result[-1:]}, not {car.root}")
            self.car_state[car.root] = "pinned"
            self.ledger.pinned[car.root] = True

    async def _render(self) -> None:
        if self.retry_renders:
            clip, factor = self.retry_renders.pop(0)
        else:
            clip = self.rng.choice(self.inputs.clip_cids)
            factor = self.rng.choice((0.5, 0.75, 1.25, 1.5, 2, 2.5, 3, 4))
        result = await self._op(
            "render",
            lambda: self.cli(
                "render",
                str(self.inputs.recipe),
                "--input",
                f"clip={clip}",
                "--param",
                f"fast.factor={factor}",
            ),
        )
        if isinstance(result, list) and result:
            self.ledger.assets[result[-1]] = f"render x{factor}"
        elif result is not None:  # interrupted or never started: the user renders again
            self.retry_renders.append((clip, factor))

    async def repeat_interrupted(self) -> None:
        """Once each, what kills interrupted and a user would repeat: adds (either way),
        renders and publishes (the campaign's final round)."""
        self.resume()
        for kind, file in list(self.retry_adds):
            self.retry_adds.remove((kind, file))
            result = await self._op(kind, partial(self._add, kind, file))
            if isinstance(result, str):
                self.ledger.assets[result] = f"{kind} {file.name} (repeated)"
        for _ in range(len(self.retry_renders)):
            await self._render()
        for _ in range(len(self.retry_publish)):
            await self.publish()

    async def _daemon_lane(self) -> None:
        while not self._stop.is_set():
            roll = self.rng.random()
            if roll < 0.45:
                await self.publish()
            elif roll < 0.75:
                await self._pin_add()
            else:
                await self._pin_rm()
            await self._pause(0.0, 0.2)

    async def publish(self) -> None:
        if self.retry_publish:
            cid = self.retry_publish.pop(0)
        else:
            todo = [c for c in self.ledger.assets if c not in self.ledger.published]
            if not todo:
                return
            cid = self.rng.choice(todo)
        body = {"cid": cid, "text": "from the crash campaign"}
        result = await self._op(
            "publish", lambda: self._api("POST", "/api/v1/activitypub/publish", json=body)
        )
        if result is _INTERRUPTED or result is _SKIPPED or result is None:
            self.retry_publish.append(cid)
        else:
            self.ledger.published[cid] = result["activity"]

    def _pin_candidates(self, want: bool | None) -> list[str]:
        cars = [root for root, state in self.car_state.items() if state == "pinned"]
        pool = [c for c in [*self.pin_targets, *cars] if c not in self.busy]
        if want is None:
            return pool
        return [c for c in pool if self.ledger.pinned.get(c) is want]

    async def _pin_add(self) -> None:
        # Asset roots are whole (their signed record's pin reaches them) and CAR roots only
        # while pinned: a pin never waits on a network fetch of blocks the store lacks.
        pool = self._pin_candidates(None)
        if pool:
            cid = self.rng.choice(pool)
            await self._pin_change(cid, "pin-add", True)

    async def _pin_rm(self) -> None:
        pool = self._pin_candidates(True)
        if pool:
            cid = self.rng.choice(pool)
            await self._pin_change(cid, "pin-rm", False)

    async def _pin_change(self, cid: str, kind: str, pin: bool) -> None:
        self.busy.add(cid)
        try:
            if pin:
                result = await self._op(
                    kind, lambda: self._api("POST", "/api/v1/pins", json={"cid": cid})
                )
            else:
                result = await self._op(kind, lambda: self._api("DELETE", f"/api/v1/pins/{cid}"))
        finally:
            self.busy.discard(cid)
        car = cid in self.car_state
        if result is _INTERRUPTED:
            self.ledger.pinned[cid] = None
            if car:
                self.car_state[cid] = "?"
        elif isinstance(result, dict):
            self.ledger.pinned[cid] = pin
            if car and not pin:
                self.car_state[cid] = "released"

    async def _gc_lane(self) -> None:
        while not self._stop.is_set():
            await self._pause(0.2, 1.5)
            if not self._stop.is_set():
                await self._op("gc", lambda: self._api("POST", "/api/v1/gc", json={}))


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
