"""The gateway's ``fetch_missing`` hook: blocks the node lacks, fetched from peers, bounded.

The public ``/ipfs/<cid>`` gateway (:mod:`webui.gateway`) calls the hook for each block its
store lacks. Anyone can send such requests, so a stranger must not be able to make the node
fetch without limit. Three bounds, all cheap to check:

- a rate cap: a :class:`~webui.client_limits.TokenBucket` (one token per block,
  ``max_blocks_per_minute`` a minute, bursts of up to a minute's worth; the config's
  ``[gateway] fetch_blocks_per_minute``). Over the cap the hook returns False at once, without
  touching the network. The bucket is a pure state machine over a clock reading, unit-tested
  without trio (it lives in ``webui`` beside the per-client limits that use it too);
- a concurrency cap: at most ``max_concurrent`` blocks in flight from the gateway at once
  (``[gateway] max_concurrent_fetches``; a ``trio.CapacityLimiter``, further requests wait
  for a slot);
- a deadline per request: waiting for a slot and fetching the block together take at most
  ``timeout`` seconds, then the hook returns False.

``Network.get_block`` checks the bytes against the CID and stores them before it returns; the
hook still verifies and stores them itself if the store does not hold them afterwards, so it
keeps its promise whatever the network layer does. Fetched blocks are NOT pinned: a later
garbage collector may drop them (the node is a cache for them, not their keeper).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import trio

import dag
from dag import CID, cid_to_str
from p2p.errors import P2PError
from webui.client_limits import TokenBucket
from webui.gateway import FetchMissing

if TYPE_CHECKING:
    from daemon.config import GatewayConfig

__all__ = [
    "DEFAULT_MAX_BLOCKS_PER_MINUTE",
    "BlockSource",
    "GatewayFetchStats",
    "TokenBucket",
    "make_fetch_missing",
]

log = logging.getLogger("artdag.gateway")

DEFAULT_MAX_BLOCKS_PER_MINUTE = 1200
"""With the default 1 MiB chunks, about 20 MiB/s of content fetched for strangers, on average."""


class BlockSource(Protocol):
    """Where missing blocks come from: the running :class:`p2p.network.Network` is one."""

    async def get_block(self, cid: CID, *, timeout: float = ...) -> bytes: ...


@dataclass(slots=True)
class GatewayFetchStats:
    """Counts of what the hook did, for operators and tests."""

    fetched: int = 0  # blocks brought from peers
    refused: int = 0  # over the rate cap: no network touched
    failed: int = 0  # no peer delivered within the deadline, or the network refused


class _Fetcher:
    def __init__(
        self,
        store: dag.Blockstore,
        network: BlockSource,
        *,
        max_concurrent: int,
        timeout: float,
        bucket: TokenBucket,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.network = network
        self.limiter = trio.CapacityLimiter(max_concurrent)
        self.timeout = timeout
        self.bucket = bucket
        self.clock = clock
        self.stats = GatewayFetchStats()

    async def __call__(self, cid: CID) -> bool:
        network = self.network
        if not self.bucket.take(self.clock()):
            self.stats.refused += 1
            log.info("gateway fetch of %s refused: over the rate cap", cid_to_str(cid))
            return False
        with trio.move_on_after(self.timeout) as deadline:
            async with self.limiter:
                left = max(0.001, deadline.deadline - trio.current_time())
                try:
                    data = await network.get_block(cid, timeout=left)
                except P2PError as exc:  # BlockUnavailable, or the network not running
                    self.stats.failed += 1
                    log.info("gateway fetch of %s failed: %s", cid_to_str(cid), exc)
                    return False
            store = self.store
            if not await store.has(cid):
                try:
                    block = dag.Block.checked(cid, data)
                except dag.BlockCorrupt as exc:  # the network layer let wrong bytes through
                    self.stats.failed += 1
                    log.warning("gateway fetch of %s refused: %s", cid_to_str(cid), exc)
                    return False
                await store.put(block)  # a StoreError goes up: the gateway answers 503
            self.stats.fetched += 1
            return True
        self.stats.failed += 1
        log.info("gateway fetch of %s: no block within %g s", cid_to_str(cid), self.timeout)
        return False


def make_fetch_missing(
    store: dag.Blockstore,
    network: BlockSource | None,
    gateway: GatewayConfig,
    *,
    max_concurrent: int | None = None,
    timeout: float = 30.0,
    max_blocks_per_minute: int | None = None,
    clock: Callable[[], float] | None = None,
) -> FetchMissing | None:
    """The gateway's hook fetching missing blocks from peers into ``store``, or None without
    a ``network`` (then the gateway serves only what it holds).

    ``max_concurrent`` blocks in flight at most; ``timeout`` seconds at most per block,
    waiting for a slot included; ``max_blocks_per_minute`` on average (bursts up to that many),
    beyond which the hook returns False at once. ``clock`` (default ``trio.current_time``) is
    the rate cap's clock. The hook's ``stats`` attribute counts what it did. The caps default
    to the config's ``[gateway] max_concurrent_fetches`` and ``fetch_blocks_per_minute``."""
    if network is None:
        return None
    if max_concurrent is None:
        max_concurrent = gateway.max_concurrent_fetches
    if max_blocks_per_minute is None:
        max_blocks_per_minute = gateway.fetch_blocks_per_minute
    if max_concurrent < 1:
        raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if max_blocks_per_minute < 1:
        raise ValueError(f"max_blocks_per_minute must be at least 1, got {max_blocks_per_minute}")
    bucket = TokenBucket(capacity=max_blocks_per_minute, rate=max_blocks_per_minute / 60)
    return _Fetcher(
        store,
        network,
        max_concurrent=max_concurrent,
        timeout=timeout,
        bucket=bucket,
        clock=clock or trio.current_time,
    )
