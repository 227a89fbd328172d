"""Pins with reasons, the pinning policies, the storage quota and the garbage collector.

One :class:`PinService` per node. It answers ``artdag pin add|rm|ls``, ``artdag gc`` and the
settings page, and the daemon runs it (:meth:`PinService.run`) to apply the policies
continuously:

- every ``policy_interval_seconds``: pin the repo head of each followed creator (``followed``;
  the head reaches the whole chain, every record and what the records link to, fetched from
  the network when missing) and the ``popular_count`` most popular works (``popular``; scores
  from :mod:`daemon.core.pins.popularity`), unpin what the policies no longer want, and under
  ``quota_bytes`` give up the least valuable policy pins (:mod:`daemon.core.pins.policy`), then
  collect garbage so the space is really freed;
- every ``gc_interval_seconds``: collect garbage.

Usage arrives as gateway events (:meth:`observe_gateway`, one view per client and work per ten
minutes) and fediverse likes and boosts (:meth:`observe_usage`); both only queue the event
(they are called on the request path), and the queue is written in batches.

What the collector keeps: every pin, and the blocks of the creator repos the node knows (each
commit and record block, not what records link to: a followed creator's works are kept by the
``followed`` pin, other creators' works are only cached). Blocks younger than
``gc_grace_seconds`` and the DAGs the gateway is serving are kept too (see :mod:`dag.gc`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from daemon.core.pins.fetching import FetchSource
from daemon.core.pins.policy import EVICTABLE, Candidate, fit_quota, plan_changes, value_order
from daemon.core.pins.popularity import WEIGHTS, PopularityStore, RequestDedup
from dag import CID, Blockstore, Pin, cid_to_str, parse_cid
from dag.errors import CidError, StoreError
from p2p import fetch_dag
from p2p.repo import RepoIndex

if TYPE_CHECKING:
    from daemon.config.sections import PinningConfig
    from daemon.core.index import Index
    from dag.gc import GcReport
    from webui.gateway import GatewayEvent

__all__ = ["PinError", "PinPaths", "PinService", "PinView", "RoundReport", "protected_bytes"]

log = logging.getLogger("artdag.pins")

FLUSH_EVERY_S = 1.0
MAX_PENDING = 10_000
SKIP_AFTER_QUOTA_S = 3600.0  # a work given up for the quota is not fetched again for an hour
SKIP_AFTER_FAILURE_S = 300.0  # nor one that could not be fetched, for five minutes


class PinError(ValueError):
    """A pin request the node refuses (bad CID, nothing to unpin, content unavailable)."""


@dataclass(frozen=True, slots=True)
class PinView:
    cid: str
    recursive: bool
    reasons: tuple[str, ...]
    what: str  # an asset's name and type, a record's type, or the kind of block
    asset: bool
    note: str = ""  # the followed creator, or the work's popularity

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"reasons": list(self.reasons)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> PinView:
        return cls(**(value | {"reasons": tuple(value["reasons"])}))


@dataclass(slots=True)
class RoundReport:
    """What one policy round did."""

    at: float = 0.0
    wanted: int = 0
    pinned: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dropped_for_quota: list[str] = field(default_factory=list)
    quota_bytes: int = 0
    pinned_bytes: int = 0
    gc: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RoundReport:
        return cls(**value)


async def protected_bytes(store: Blockstore, pins: list[Pin], seen: set[bytes]) -> int:
    """Bytes of the pins no policy gives up (any reason besides followed/popular), each block
    counted once; their multihash keys are added to ``seen``."""
    total = 0
    for pin in pins:
        if set(pin.reasons) - set(EVICTABLE):
            total += (await store.measure(pin.cid, recursive=pin.recursive, seen=seen)).bytes
    return total


@dataclass(frozen=True, slots=True)
class PinPaths:
    popularity_db: Path  # usage events and scores (``popularity.db``)
    repos_db: Path  # the creator repos the node knows (``p2p.db``): followed heads, gc roots


class PinService:
    """Constructed once per node by :meth:`daemon.services.Services.pins` from the store, the
    asset index, ``[pinning]``, its databases and what to fetch with (the network is None
    without the daemon: then only what the store holds can be pinned)."""

    def __init__(
        self, index: Index, settings: PinningConfig, paths: PinPaths, source: FetchSource
    ) -> None:
        self.store = source.store
        self.index = index
        self.settings = settings
        self.source = source
        self.popularity = PopularityStore(
            paths.popularity_db, settings.popular_half_life_hours * 3600.0
        )
        self.repos = RepoIndex(paths.repos_db)
        self.dedup = RequestDedup()
        self._pending: list[tuple[str, str, float]] = []
        self._lock = trio.Lock()  # one policy round, pin change or collection at a time
        self._skip: dict[str, float] = {}  # CID -> not before (monotonic)
        self.last_round: RoundReport | None = None
        self.last_gc: dict[str, Any] | None = None

    def close(self) -> None:
        self.popularity.close()
        self.repos.db.conn.close()

    def _followed_heads(self) -> dict[str, str]:
        """Followed creator's did -> its repo head as we know it."""
        followed = set(self.settings.follow_creators)
        return {
            row.repo: cid_to_str(row.head) for row in self.repos.heads() if row.repo in followed
        }

    # -- usage -------------------------------------------------------------------------------
    def observe_gateway(self, event: GatewayEvent) -> None:
        """A gateway response finished: count a view of its root (GETs that served it)."""
        if event.method != "GET" or event.status not in (200, 206, 304):
            return
        try:
            cid = cid_to_str(parse_cid(event.root))
        except CidError:
            return
        if self.dedup.is_new_view(event.client, cid, time.monotonic()):
            self._queue(cid, "request")

    def observe_usage(self, cid: str, kind: str) -> None:
        """A fediverse ``like`` or ``boost`` of a work."""
        if kind in WEIGHTS:
            self._queue(cid, kind)

    def _queue(self, cid: str, kind: str) -> None:
        if len(self._pending) < MAX_PENDING:
            self._pending.append((cid, kind, time.time()))

    async def flush_usage(self) -> int:
        events, self._pending = self._pending, []
        if events:
            await trio.to_thread.run_sync(self.popularity.add, events)
        return len(events)

    async def top(self, n: int = 10) -> list[dict[str, Any]]:
        await self.flush_usage()
        now = time.time()
        rows = await trio.to_thread.run_sync(self.popularity.top, n, now)
        return [{"cid": r.cid, "score": round(r.score, 3), "events": r.events} for r in rows]

    # -- pins the operator asks for ------------------------------------------------------------
    async def add(self, cid: str, *, recursive: bool = True) -> PinView:
        """Pin for the operator (``explicit``), fetching what the store lacks first."""
        parsed = self._parse(cid)
        # The hold keeps a collection from taking the fetched blocks before the pin is written;
        # the fetch itself runs outside the lock, so a long one does not stall collections.
        with self.store.hold(parsed):
            error = await self._ensure_local(parsed, recursive=recursive)
            if error is not None:
                raise PinError(f"cannot pin {cid_to_str(parsed)}: {error}")
            async with self._lock:
                await self.store.pin(parsed, recursive=recursive, reason="explicit")
        return next(p for p in await self.views() if p.cid == cid_to_str(parsed))

    async def remove(self, cid: str, *, every_reason: bool = False) -> tuple[str, ...]:
        """Drop the operator's reasons (``explicit`` and ``local``), or every reason; return
        the reasons removed. A policy that still wants the CID pins it again next round."""
        parsed = self._parse(cid)
        key = cid_to_str(parsed)
        async with self._lock:
            pin = next((p for p in await self.store.pins() if p.cid == parsed), None)
            if pin is None:
                raise PinError(f"{key} is not pinned")
            reasons = (
                pin.reasons
                if every_reason
                else tuple(r for r in pin.reasons if r in ("explicit", "local"))
            )
            if not reasons:
                raise PinError(
                    f"{key} is pinned only by policy ({', '.join(pin.reasons)}); "
                    "use --all to unpin it anyway"
                )
            for reason in reasons:
                await self.store.unpin(parsed, reason=reason)
        return reasons

    async def views(self, reason: str | None = None) -> list[PinView]:
        """Every pin with what it is, assets first."""
        pins = await self.store.pins()
        if reason is not None:
            pins = [p for p in pins if reason in p.reasons]
        cids = [cid_to_str(p.cid) for p in pins]
        kinds = await trio.to_thread.run_sync(self.index.record_types, cids)
        heads = await trio.to_thread.run_sync(self._followed_heads)
        followed = {head: did for did, head in heads.items()}
        scores = await trio.to_thread.run_sync(self.popularity.scores, cids, time.time())
        out = []
        for pin, cid in zip(pins, cids, strict=True):
            asset = await trio.to_thread.run_sync(self.index.asset, cid)
            if asset is not None:
                what = f"{asset.name} ({asset.mime or 'file'})"
            elif cid in kinds:
                what = f"{kinds[cid]} record"
            else:
                what = "dag-cbor block" if pin.cid.codec.name == "dag-cbor" else "file or block"
            note = ""
            if "followed" in pin.reasons and cid in followed:
                note = f"head of {followed[cid]}"
            elif "popular" in pin.reasons:
                note = f"score {scores.get(cid, 0.0):.2f}"
            out.append(PinView(cid, pin.recursive, pin.reasons, what, asset is not None, note))
        return sorted(out, key=lambda v: (not v.asset, v.what, v.cid))

    @staticmethod
    def _parse(cid: str) -> CID:
        try:
            return parse_cid(cid)
        except CidError as exc:
            raise PinError(str(exc)) from None

    # -- fetching ----------------------------------------------------------------------------
    async def _ensure_local(self, cid: CID, *, recursive: bool = True) -> str | None:
        """None once the DAG (or the block) is in the store; else why it is not."""
        store = self.store
        with store.hold(cid):
            size = await store.measure(cid) if recursive else None
            if size is not None and size.missing == 0 and size.blocks > 0:
                return None
            if not recursive and await store.has(cid):
                return None
            if not self.source.online:
                return "not in the store, and the network is off"
            try:
                timeout = self.settings.fetch_timeout_seconds
                await fetch_dag(self.source, cid, timeout=timeout)
            except Exception as exc:  # the fetcher's own error says what went wrong
                return str(exc) or type(exc).__name__
        return None

    # -- garbage collection --------------------------------------------------------------------
    async def collect(self, grace_s: float | None = None) -> GcReport:
        """Remove the blocks nothing keeps (see the module docstring); report what it freed."""
        async with self._lock:
            return await self._collect(grace_s)

    async def _collect(self, grace_s: float | None) -> GcReport:
        chains = await trio.to_thread.run_sync(self.repos.chain_blocks)
        report = await self.store.collect_garbage(
            keep_shallow=chains,
            grace_s=self.settings.gc_grace_seconds if grace_s is None else grace_s,
        )
        self.last_gc = report.to_json() | {"at": time.time()}
        log.info(
            "garbage collection: %d blocks removed, %d bytes freed, in %.2f s",
            report.removed,
            report.freed_bytes,
            report.seconds,
        )
        return report

    # -- the policies --------------------------------------------------------------------------
    async def _wanted(self) -> list[Candidate]:
        heads = await trio.to_thread.run_sync(self._followed_heads)
        wanted = [Candidate(head, "followed", 0.0, did) for did, head in sorted(heads.items())]
        if self.settings.popular_count:
            for row in await self.top(self.settings.popular_count):
                wanted.append(Candidate(row["cid"], "popular", row["score"]))
        return wanted

    async def policy_round(self) -> RoundReport:
        """Apply the policies once (the daemon does this every ``policy_interval_seconds``)."""
        async with self._lock:
            report = await self._policy_round()
        self.last_round = report
        return report

    async def _policy_round(self) -> RoundReport:
        store, settings = self.store, self.settings
        now = time.monotonic()
        report = RoundReport(at=time.time(), quota_bytes=settings.quota_bytes)
        wanted = await self._wanted()
        report.wanted = len(wanted)
        pinned = {cid_to_str(p.cid): frozenset(p.reasons) for p in await store.pins()}
        skip = frozenset(c for c, until in self._skip.items() if until > now)
        changes = plan_changes(wanted, pinned, skip)
        for candidate in changes.pin:
            cid = parse_cid(candidate.cid)
            error = await self._ensure_local(cid)
            if error is not None:
                report.failed[candidate.cid] = error
                self._skip[candidate.cid] = now + SKIP_AFTER_FAILURE_S
                log.warning("policy pin %s (%s) failed: %s", candidate.cid, candidate.reason, error)
                continue
            await store.pin(cid, reason=candidate.reason)
            report.pinned.append(candidate.cid)
        for cid_text, reason in changes.unpin:
            await store.unpin(parse_cid(cid_text), reason=reason)
            report.unpinned.append(cid_text)
        if settings.quota_bytes:
            values = {c.cid: c for c in wanted}
            dropped, report.pinned_bytes = await self._apply_quota(values)
            report.dropped_for_quota = dropped
            for cid_text in dropped:
                self._skip[cid_text] = now + SKIP_AFTER_QUOTA_S
            usage = await store.usage()
            if dropped or usage.bytes > settings.quota_bytes:
                report.gc = (await self._collect(None)).to_json()
        return report

    async def _apply_quota(self, wanted: dict[str, Candidate]) -> tuple[list[str], int]:
        store = self.store
        pins = await store.pins()
        seen: set[bytes] = set()
        protected = await protected_bytes(store, pins, seen)
        evictable = [
            wanted.get(key) or Candidate(key, pin.reasons[0], 0.0)
            for pin in pins
            if set(pin.reasons) <= set(EVICTABLE)
            for key in [cid_to_str(pin.cid)]
        ]
        ordered = []
        for candidate in value_order(evictable):
            size = await store.measure(parse_cid(candidate.cid), seen=seen)
            ordered.append((candidate, size.bytes))
        plan = fit_quota(protected, ordered, self.settings.quota_bytes)
        for candidate in plan.drop:
            for reason in EVICTABLE:
                await store.unpin(parse_cid(candidate.cid), reason=reason)
            log.info("quota: gave up the %s pin of %s", candidate.reason, candidate.cid)
        return [c.cid for c in plan.drop], plan.kept_bytes

    # -- the daemon's loops --------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._flush_loop)
            nursery.start_soon(self._policy_loop)
            if self.settings.gc_interval_seconds > 0:
                nursery.start_soon(self._gc_loop, self.settings.gc_interval_seconds)
            task_status.started()

    async def _flush_loop(self) -> None:
        while True:
            await trio.sleep(FLUSH_EVERY_S)
            try:
                await self.flush_usage()
            except Exception:
                log.exception("writing usage scores failed")

    async def _policy_loop(self) -> None:
        while True:
            try:
                await self.policy_round()
            except (StoreError, OSError) as exc:
                log.warning("pinning policy round failed: %s", exc)
            except Exception:
                log.exception("pinning policy round failed")
            await trio.sleep(self.settings.policy_interval_seconds)

    async def _gc_loop(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            try:
                await self.collect()
            except StoreError as exc:
                log.warning("garbage collection skipped: %s", exc)
                return  # a store that cannot collect (Kubo) will not learn to
            except Exception:
                log.exception("garbage collection failed")
