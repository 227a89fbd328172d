"""The trio adapter that drains the delivery queue: claim due rows, POST them, record outcomes.

The worker holds no delivery state of its own: the queue row is the truth, and the decisions
are ``delivery_schedule``'s. It only owns the I/O loop. The HTTP POST itself (signing,
client, timeouts) is the caller's ``send`` function, which turns every result, including
transport errors, into an :class:`~activitypub_bridge.delivery_schedule.Outcome`.

Concurrency is bounded twice: ``claim_due`` never hands out more than ``per_host`` in-flight
rows per host (so the limit holds across restarts), and a ``trio.CapacityLimiter`` per host
plus one global limiter bound the sends in this process. Database calls go through
``trio.to_thread.run_sync``; no other threads are started.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio

from activitypub_bridge.delivery_queue import Delivery, DeliveryQueue
from activitypub_bridge.delivery_schedule import Outcome

__all__ = ["DeliveryWorker", "SendFunction"]

#: ``await send(inbox, body)``: POST ``body`` to ``inbox``, return what happened.
SendFunction = Callable[[str, bytes], Awaitable[Outcome]]


class DeliveryWorker:
    """Runs deliveries from ``queue`` through ``send`` until cancelled."""

    def __init__(
        self,
        queue: DeliveryQueue,
        send: SendFunction,
        max_concurrency: int = 16,
        per_host: int = 2,
        clock: Callable[[], float] = time.time,
        *,
        idle_poll: float = 30.0,
    ) -> None:
        if max_concurrency < 1 or per_host < 1:
            raise ValueError("delivery worker: concurrency limits must be at least 1")
        self.queue = queue
        self._send = send
        self.max_concurrency = max_concurrency
        self.per_host = per_host
        self._clock = clock
        self._idle_poll = idle_poll  # re-check the file now and then (enqueues by other processes)
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._host_limiters: dict[str, trio.CapacityLimiter] = {}
        self._in_flight = 0
        self._wake = trio.Event()
        self.attempts = 0  # sends made by this worker (for stats and tests)

    def wake(self) -> None:
        """Look at the queue now (call after an enqueue)."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled; started means the loop is running."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._wake = trio.Event()  # before claiming, so no wake-up is lost
                now = self._clock()
                free = self.max_concurrency - self._in_flight
                batch: list[Delivery] = []
                if free > 0:
                    batch = await trio.to_thread.run_sync(
                        self.queue.claim_due, now, free, self.per_host
                    )
                for delivery in batch:
                    self._in_flight += 1
                    nursery.start_soon(self._deliver, delivery)
                # Rows due now but not claimed wait for a slot: a finishing send wakes us. When
                # every free slot was filled, a finishing send is what we wait for anyway; only
                # otherwise may the next row be due later (a retry), so ask when.
                delay = self._idle_poll
                if len(batch) < free or self._in_flight == 0:
                    upcoming = await trio.to_thread.run_sync(self.queue.next_due, now)
                    if upcoming is not None:
                        delay = upcoming - self._clock()
                with trio.move_on_after(max(0.0, min(delay, self._idle_poll))):
                    await self._wake.wait()

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            host_limiter = self._host_limiters.setdefault(
                delivery.host, trio.CapacityLimiter(self.per_host)
            )
            async with self._limiter, host_limiter:
                outcome = await self._attempt(delivery)
            await trio.to_thread.run_sync(self.queue.finish, delivery.id, outcome, self._clock())
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.queue.release, delivery.id)
            raise
        finally:
            self._in_flight -= 1
            self.wake()

    async def _attempt(self, delivery: Delivery) -> Outcome:
        self.attempts += 1
        try:
            return await self._send(delivery.inbox, delivery.body)
        except Exception as exc:  # a bug or an unexpected transport error: retry later
            return Outcome.transport_error(f"{type(exc).__name__}: {exc}"[:500])
