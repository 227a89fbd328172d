"""The Pinning Service worker: pin requests move ``queued -> pinning -> pinned | failed``.

:class:`PinningWorker` is what the ``/pins`` routes call (add, get, list, replace, remove) and
what the daemon runs in its nursery (``await nursery.start(service.run)``). The worker starts
queued requests fairly across tokens (:mod:`daemon.core.pinning_api.schedule`: round robin, at most
``[pinning] max_concurrent_per_token`` fetches per token, ``max_concurrent`` in all), fetches
each DAG (:func:`p2p.fetch_dag`, from the request's public origins and the network) within
``[pinning] fetch_timeout_seconds``, and once every block is present pins the root with the
reason ``remote``; a request that cannot complete becomes ``failed`` with the reason in
``info.status_details``. Requests left ``queued`` or ``pinning`` when the daemon stopped are
picked up again when it starts (the walk skips what the store already holds).

Pins and requests change together under one lock, so that:

- deleting a request drops the ``remote`` reason of its CID only when no other request still
  wants that CID (another one not ``failed``, or a replacement still in progress);
- a replacement (``POST /pins/{id}``) gets a new request id and the old request disappears at
  once, but the old CID's ``remote`` pin ends only when the new request settles (pinned or
  failed): blocks common to both are never left unpinned in between, as the spec asks;
- a fetch cancelled by a delete never pins afterwards.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from daemon.core.pinning_api.delegates import Delegates
from daemon.core.pinning_api.dialable import dialable_origin
from daemon.core.pinning_api.request_store import PinRequestStore
from daemon.core.pinning_api.requests import ListQuery, PinRequest, PinSpec
from daemon.core.pinning_api.schedule import Queued, choose, per_token_slots
from daemon.core.pins.fetching import FetchSource
from daemon.core.pins.service import protected_bytes
from dag import CID, parse_cid
from p2p import DagFetchError, fetch_dag

if TYPE_CHECKING:
    from daemon.config.sections import PinningConfig

__all__ = ["PinningWorker"]

log = logging.getLogger("artdag.pinning")

REASON = "remote"
MAX_PARALLEL_BLOCKS = 16


class PinningWorker:
    """Constructed once per node by :meth:`daemon.services.Services.pinning`: its requests
    database, ``[pinning]``, what to fetch with and the node's addresses for ``delegates``."""

    def __init__(
        self,
        requests_db: Path,
        settings: PinningConfig,
        source: FetchSource,
        delegates: Delegates,
    ) -> None:
        self.settings = settings
        self.store = source.store
        self.source = source
        self._delegates = delegates
        self.requests = PinRequestStore(requests_db)
        self._lock = trio.Lock()  # pins and request rows change together under it
        self._wake = trio.Event()
        self._running: dict[str, trio.CancelScope] = {}
        self._running_owner: dict[str, str] = {}  # request id -> token name, while fetching
        self._progress: dict[str, tuple[int, int]] = {}

    def close(self) -> None:
        self.requests.close()

    # -- what the routes call ---------------------------------------------------------------
    def delegates(self) -> list[str]:
        """This node's libp2p multiaddrs, each ending in ``/p2p/<peer id>`` (at least one)."""
        return self._delegates.addrs()

    def info_of(self, request: PinRequest) -> dict[str, str]:
        """``PinStatus.info``: the stored info, with live progress while pinning."""
        info = dict(request.info)
        progress = self._progress.get(request.requestid)
        if request.status == "pinning" and progress is not None:
            done, known = progress
            info["status_details"] = f"{done} of {known} blocks known so far present"
        return info

    async def add(self, pin: PinSpec, owner: str) -> PinRequest:
        """Queue a request; :class:`~daemon.core.pinning_api.requests.PendingLimitReached` if
        ``owner``
        has ``[pinning] max_pending_per_token`` requests queued or pinning already."""
        limit = self.settings.max_pending_per_token
        request = await trio.to_thread.run_sync(
            lambda: self.requests.add(pin, owner=owner, max_pending=limit)
        )
        self._wake.set()
        return request

    async def get(self, requestid: str, owner: str | None = None) -> PinRequest | None:
        return await trio.to_thread.run_sync(self.requests.get, requestid, owner)

    async def list(
        self, query: ListQuery, owner: str | None = None
    ) -> tuple[int, list[PinRequest]]:
        return await trio.to_thread.run_sync(self.requests.list, query, owner)

    async def remove(self, requestid: str, owner: str | None = None) -> bool:
        """Delete a request (cancelling its fetch); False if the owner has no such request."""
        async with self._lock:
            if await self.get(requestid, owner) is None:
                return False
            self._cancel(requestid)
            old = await trio.to_thread.run_sync(self.requests.delete, requestid)
            if old is None:
                return False
            await self._release([old.pin.key, *old.releases])
        return True

    async def replace(self, requestid: str, pin: PinSpec, owner: str) -> PinRequest | None:
        """A new request for ``pin`` in place of ``requestid`` (None if there is none); the old
        CID stays pinned until the new request settles."""
        async with self._lock:
            old = await self.get(requestid, owner)
            if old is None:
                return None
            releases = [*old.releases, old.pin.key]

            def swap() -> PinRequest:
                new = self.requests.add(
                    pin,
                    owner=owner,
                    releases=releases,
                    max_pending=self.settings.max_pending_per_token,
                    replacing=requestid,
                )
                self.requests.delete(requestid)
                return new

            new = await trio.to_thread.run_sync(swap)  # PendingLimitReached: nothing changed
            self._cancel(requestid)
        self._wake.set()
        return new

    # -- the worker ---------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Work the queue until cancelled; ``started`` once interrupted requests are requeued.
        The requests database stays open for the routes: :class:`~daemon.services.Services`
        closes it with the node."""
        resumed = await trio.to_thread.run_sync(self.requests.requeue_interrupted)
        if resumed:
            log.info("resuming %d pin request(s) interrupted by the last stop", resumed)
        limit = max(1, self.settings.max_concurrent)
        per_token = per_token_slots(limit, self.settings.max_concurrent_per_token)
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._wake = trio.Event()
                free = limit - len(self._running)
                if free > 0:
                    for request in await self._next(free, per_token):
                        scope = trio.CancelScope()
                        self._running[request.requestid] = scope
                        self._running_owner[request.requestid] = request.owner
                        nursery.start_soon(self._work, request, scope)
                await self._wake.wait()

    async def _next(self, free: int, per_token: int) -> Sequence[PinRequest]:
        """The queued requests to start in ``free`` slots, fairly across tokens."""
        heads = await trio.to_thread.run_sync(
            self.requests.queued_heads, per_token, list(self._running)
        )
        by_id = {r.requestid: r for r in heads}
        running: dict[str, int] = {}
        for owner in self._running_owner.values():
            running[owner] = running.get(owner, 0) + 1
        picked = choose(
            [Queued(r.requestid, r.owner, r.created_ms) for r in heads], running, free, per_token
        )
        return [by_id[q.requestid] for q in picked]

    def _cancel(self, requestid: str) -> None:
        scope = self._running.get(requestid)
        if scope is not None:
            scope.cancel()

    async def _work(self, request: PinRequest, scope: trio.CancelScope) -> None:
        rid = request.requestid
        try:
            await self._fetch_and_settle(request, scope)
        except Exception:  # a bug or a broken store: the request fails, the worker lives on
            log.exception("pin request %s failed unexpectedly", rid)
            await trio.to_thread.run_sync(
                self.requests.set_status, rid, "failed", {"status_details": "internal error"}
            )
        finally:
            self._running.pop(rid, None)
            self._running_owner.pop(rid, None)
            self._progress.pop(rid, None)
            self._wake.set()

    async def _fetch_and_settle(self, request: PinRequest, scope: trio.CancelScope) -> None:
        rid = request.requestid
        root = parse_cid(request.pin.cid)
        with scope:
            if not await trio.to_thread.run_sync(self.requests.set_status, rid, "pinning", {}):
                return  # deleted before it started

            def progress(done: int, known: int) -> None:
                self._progress[rid] = (done, known)

            try:
                report = await fetch_dag(
                    self.source,
                    root,
                    origins=request.pin.origins,
                    timeout=self.settings.fetch_timeout_seconds,
                    max_parallel=MAX_PARALLEL_BLOCKS,
                    progress=progress,
                    check_origin=functools.partial(
                        dialable_origin, allow_private=self.settings.allow_private_origins
                    ),
                )
                failure = None
            except DagFetchError as exc:
                failure = str(exc)
        if scope.cancelled_caught:
            return  # deleted or replaced: whoever cancelled settled the pins
        if failure is None and not await self._fits_quota(root):
            failure = (
                f"the node's storage quota ({self.settings.quota_bytes} bytes) cannot take "
                "this DAG beside its local, explicit and remote pins"
            )
        async with self._lock:
            if await self.get(rid) is None:
                return
            if failure is None:
                await self.store.pin(root, reason=REASON)
                info = {
                    "dag_size": str(report.bytes),
                    "blocks": str(report.blocks),
                    "fetched_blocks": str(report.fetched),
                }
                await trio.to_thread.run_sync(self.requests.set_status, rid, "pinned", info)
                log.info("pinned %s for request %s", request.pin.cid, rid)
            else:
                await trio.to_thread.run_sync(
                    self.requests.set_status, rid, "failed", {"status_details": failure}
                )
                log.info("pin request %s failed: %s", rid, failure)
            current = await self.get(rid)
            if current is not None and current.releases:
                await trio.to_thread.run_sync(self.requests.clear_releases, rid)
                await self._release(current.releases)
            if failure is not None:
                await self._release([request.pin.key])

    async def _fits_quota(self, root: CID) -> bool:
        """Whether the pins no policy gives up (local, explicit, remote) and this DAG fit in
        ``[pinning] quota_bytes`` together; popular and followed pins make room for it at the
        pinning policy's next round."""
        quota = self.settings.quota_bytes
        if not quota:
            return True
        store = self.store
        seen: set[bytes] = set()
        total = await protected_bytes(store, await store.pins(), seen)
        total += (await store.measure(root, seen=seen)).bytes
        return total <= quota

    async def _release(self, keys: Sequence[str]) -> None:
        """Drop the ``remote`` reason of each CID key no remaining request wants (under the
        lock)."""
        for key in dict.fromkeys(keys):
            if not await trio.to_thread.run_sync(self.requests.still_wanted, key):
                await self.store.unpin(parse_cid(key), reason=REASON)
