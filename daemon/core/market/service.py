"""The render market's trio adapter: job gossip in, decisions of ``renderer.market`` out.

One :class:`MarketService` runs in the daemon's nursery beside the network. It subscribes to
``/artdag/1/jobs``, hands each message to the role it concerns — the :class:`Requester`
(:mod:`daemon.core.market.requester`, every node) or the :class:`Volunteer`
(:mod:`daemon.core.market.volunteer`, with ``--volunteer``) — and runs the lease clock: a tick every
0.1 s while any job is open (leases expire, slots are granted, offers go out), none when idle.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from daemon.core.market.context import MarketContext, MarketError, MarketSettings
from daemon.core.market.requester import Requester
from daemon.core.market.store import MarketStore
from daemon.core.market.volunteer import Volunteer
from dag import CID
from p2p.gossip import JOBS, Delivered, GossipError, envelope
from renderer import StepOutput
from renderer.market import JobSpec, VolunteerPolicy

if TYPE_CHECKING:
    from daemon.core.render.service import RenderService
    from p2p.gossip import Gossip
    from p2p.network import Network

__all__ = ["MarketError", "MarketService", "MarketSettings", "new_job_id"]

log = logging.getLogger("artdag.market")

TICK_S = 0.1


def new_job_id() -> str:
    return secrets.token_hex(16)


class MarketService:
    def __init__(
        self,
        *,
        network: Network,
        renders: RenderService,
        store: MarketStore,
        settings: MarketSettings,
        workroot: Path,
        policy: VolunteerPolicy | None = None,
        fault: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.network = network
        self.renders = renders
        self.settings = settings
        self.workroot = workroot
        self.did = renders.identity.did
        self._wake = trio.Event()
        self.ctx = MarketContext(network, renders, store, settings, self._publish, self._poke)
        self.requester = Requester(self.ctx, rng)
        self.volunteer = Volunteer(self.ctx, policy, fault) if policy is not None else None

    @property
    def gossip(self) -> Gossip:
        if self.network.gossip is None:
            raise MarketError("the network is not running")
        return self.network.gossip

    # -- what the rest of the daemon calls ----------------------------------------------------
    async def run_job(
        self, spec: JobSpec, *, verify: bool = False
    ) -> tuple[StepOutput, tuple[str, ...]]:
        """Gossip ``spec``; wait for an accepted result: (output, accepted volunteers)."""
        return await self.requester.run_job(spec, verify=verify)

    async def reuse(self, cache_id: CID) -> StepOutput | None:
        return await self.requester.reuse(cache_id)

    # -- lifetime ---------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        messages = self.gossip.subscribe(JOBS.name)
        async with trio.open_nursery() as nursery:
            self.ctx.nursery = nursery
            nursery.start_soon(self._receive, messages)
            nursery.start_soon(self._ticks)
            task_status.started()

    def _busy(self) -> bool:
        """Jobs of ours open, slots we hold, or jobs we may still offer on: the clock ticks."""
        if self.requester.jobs:
            return True
        if self.volunteer is None:
            return False
        book = self.volunteer.book
        return bool(book.held) or bool(book.offerable(time.time()))

    async def _ticks(self) -> None:
        """Leases run on the clock: expire, grant, offer. Idle when there is nothing to do."""
        while True:
            if not self._busy():
                await self._wake.wait()
                self._wake = trio.Event()
            now = time.time()
            try:
                await self.requester.tick(now)
                if self.volunteer is not None:
                    await self.volunteer.tick(now)
            except Exception:
                log.exception("market tick failed")
            await trio.sleep(TICK_S)

    def _poke(self) -> None:
        self._wake.set()

    async def _publish(self, type_name: str, **payload: Any) -> None:
        try:
            await self.gossip.publish(JOBS.name, envelope(type_name, JOBS, **payload))
        except GossipError as exc:
            log.warning("could not gossip %s: %s", type_name, exc)

    async def _receive(self, messages: trio.MemoryReceiveChannel[Delivered]) -> None:
        requester, volunteer = self.requester, self.volunteer
        handlers: dict[str, list[Any]] = {
            "offer": [requester.on_offer],
            "decline": [requester.on_decline],
            "heartbeat": [requester.on_heartbeat],
            "result": [requester.on_result],
            "release": [requester.on_release],
            "job-close": [requester.on_verdict_announced],
            "job": [],
            "lease": [],
        }
        if volunteer is not None:
            handlers["job"].append(volunteer.on_job)
            handlers["lease"].append(volunteer.on_lease)
            handlers["job-close"].append(volunteer.on_close)
        async for delivered in messages:
            record = delivered.record
            for handle in handlers[record["type"]]:
                try:
                    await handle(record, time.time())
                except Exception:
                    log.exception("handling %s %s failed", record.get("type"), delivered.cid)
