"""The ActivityPub delivery queue: retry schedule, SQLite queue, and the trio worker.

The worker tests POST over real HTTP to receivers served by hypercorn on 127.0.0.1 (one server
per "host"); the receivers count every POST per inbox path and de-duplicate by activity id, as
Mastodon does. The kill -9 test runs the worker in a child process and SIGKILLs it while a
request is in flight at the receiver.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

from activitypub_bridge.delivery_queue import DeliveryQueue, inbox_host
from activitypub_bridge.delivery_schedule import (
    TRANSITIONS,
    DeliveryError,
    DeliveryEvent,
    DeliveryState,
    DeliveryStateError,
    Outcome,
    RetryPolicy,
    classify,
    decide,
    parse_retry_after,
    transition,
)
from activitypub_bridge.delivery_worker import DeliveryWorker

REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(first_delay=0.02, factor=2.0, max_delay=0.1, jitter=0.25, max_age=60.0)


# -- the schedule (pure) ------------------------------------------------------------------


def _decide(outcome: Outcome, attempts: int = 1, now: float = 100.0, prev: int | None = None):
    return decide(
        RetryPolicy(),
        outcome,
        attempts=attempts,
        created=0.0,
        now=now,
        previous_status=prev,
        rng=random.Random(1),
    )


def test_backoff_grows_is_capped_and_jitter_is_bounded() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    for attempts in range(1, 30):
        nominal = policy.nominal_delay(attempts)
        assert nominal == min(policy.max_delay, 30.0 * 2 ** (attempts - 1))
        draws = [policy.backoff(attempts, rng) for _ in range(200)]
        assert all(0.75 * nominal <= d <= nominal <= policy.max_delay for d in draws)
    # Strictly growing below the cap, even with the worst jitter draws.
    for attempts in range(1, 10):
        assert 0.75 * policy.nominal_delay(attempts + 1) > policy.nominal_delay(attempts)
    assert policy.nominal_delay(10_000) == policy.max_delay


def test_temporary_failures_end_dead_after_two_days() -> None:
    policy = RetryPolicy()
    rng = random.Random(3)
    now, attempts, times = 0.0, 0, []
    while True:
        attempts += 1
        times.append(now)
        decision = decide(
            policy,
            Outcome(503),
            attempts=attempts,
            created=0.0,
            now=now,
            previous_status=503,
            rng=rng,
        )
        if decision.state is DeliveryState.DEAD:
            break
        assert decision.state is DeliveryState.RETRY_WAIT and decision.next_at is not None
        assert decision.next_at > now
        now = decision.next_at
    assert decision.event is DeliveryEvent.EXPIRE
    assert times[1] - times[0] >= 22.5  # first retry after ~30 s
    assert times[-1] == 2 * 86400.0  # one last try exactly at the deadline, then dead
    assert 10 < attempts < 40


@pytest.mark.parametrize("status", [400, 403, 404, 410, 422, 501])
def test_permanent_errors_are_dead_at_once(status: int) -> None:
    decision = _decide(Outcome(status))
    assert decision.state is DeliveryState.DEAD
    assert decision.event is DeliveryEvent.PERMANENT_FAILURE


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 302])
def test_temporary_errors_wait_and_retry(status: int | None) -> None:
    decision = _decide(Outcome(status))
    assert decision.state is DeliveryState.RETRY_WAIT
    assert decision.next_at is not None and 100.0 + 22.5 <= decision.next_at <= 130.0


def test_401_is_retried_once_then_dead() -> None:
    assert _decide(Outcome(401), prev=None).state is DeliveryState.RETRY_WAIT
    assert _decide(Outcome(401), prev=503).state is DeliveryState.RETRY_WAIT
    assert _decide(Outcome(401), attempts=2, prev=401).state is DeliveryState.DEAD


def test_retry_after_is_honoured() -> None:
    decision = _decide(Outcome.from_http(429, "3600", now=100.0))
    assert decision.next_at == 100.0 + 3600.0
    # A Retry-After shorter than the backoff does not shorten it.
    assert (_decide(Outcome.from_http(503, "1", now=100.0)).next_at or 0) >= 122.5
    # One reaching past the two-day deadline can never be honoured: dead now.
    late = _decide(Outcome.from_http(503, str(3 * 86400), now=100.0))
    assert late.state is DeliveryState.DEAD and late.event is DeliveryEvent.EXPIRE


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", 0.0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0 - 60) == 60.0
    assert parse_retry_after("soon", 0.0) is None


def test_transition_table() -> None:
    assert transition(DeliveryState.QUEUED, DeliveryEvent.CLAIM) is DeliveryState.IN_FLIGHT
    assert classify(Outcome(202), None) is DeliveryEvent.SUCCESS
    for state in (DeliveryState.DELIVERED, DeliveryState.DEAD):
        assert not any(s is state for s, _ in TRANSITIONS)  # final states
        with pytest.raises(DeliveryStateError, match=str(state)):
            transition(state, DeliveryEvent.CLAIM)


# -- the queue ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _open(path: Path, clock: FakeClock) -> DeliveryQueue:
    return DeliveryQueue.open(path, clock=clock, rng=random.Random(0))


def test_enqueue_is_deduplicated(tmp_path: Path) -> None:
    clock = FakeClock()
    with _open(tmp_path / "q.db", clock) as queue:
        inboxes = ["https://a.example/inbox", "https://b.example/users/x/inbox"]
        assert queue.enqueue("https://me/act/1", inboxes, b"{}") == 2
        assert queue.enqueue("https://me/act/1", [*inboxes, inboxes[0]], b"{}") == 0
        assert queue.enqueue("https://me/act/2", inboxes[:1], b"{}") == 1
        assert queue.stats().counts[DeliveryState.QUEUED] == 3
        assert {d.host for d in queue.rows()} == {"a.example", "b.example"}
        with pytest.raises(DeliveryError, match="not an http"):
            queue.enqueue("https://me/act/3", ["ftp://c.example/inbox"], b"{}")
        with pytest.raises(DeliveryError, match="unknown delivery state"):
            queue.rows("lost")
    assert inbox_host("http://127.0.0.1:8080/inbox") == "127.0.0.1:8080"


def test_claim_due_respects_per_host_limit(tmp_path: Path) -> None:
    clock = FakeClock()
    with _open(tmp_path / "q.db", clock) as queue:
        for host in ("a.example", "b.example"):
            queue.enqueue("act", [f"https://{host}/u/{i}/inbox" for i in range(5)], b"{}")
        first = queue.claim_due(clock.now, limit=10, per_host_limit=2)
        assert Counter(d.host for d in first) == {"a.example": 2, "b.example": 2}
        assert all(d.state is DeliveryState.IN_FLIGHT and d.attempts == 1 for d in first)
        assert queue.claim_due(clock.now, limit=10, per_host_limit=2) == []
        done = next(d for d in first if d.host == "a.example")
        assert queue.finish(done.id, Outcome(202)).state is DeliveryState.DELIVERED
        again = queue.claim_due(clock.now, limit=10, per_host_limit=2)
        assert [d.host for d in again] == ["a.example"]
        assert len(queue.claim_due(clock.now, limit=1, per_host_limit=5)) == 1  # limit honoured
        assert queue.stats().counts[DeliveryState.IN_FLIGHT] == 5


def test_retry_wait_and_dead_letter(tmp_path: Path) -> None:
    clock = FakeClock()
    with _open(tmp_path / "q.db", clock) as queue:
        queue.enqueue("act", ["https://a.example/inbox", "https://b.example/inbox"], b"{}")
        a, b = queue.claim_due(clock.now, 10, 2)
        waiting = queue.finish(a.id, Outcome(503))
        assert waiting.state is DeliveryState.RETRY_WAIT and waiting.last_status == 503
        assert queue.finish(b.id, Outcome(410)).state is DeliveryState.DEAD
        with pytest.raises(DeliveryStateError, match="dead"):
            queue.finish(b.id, Outcome(202))
        assert queue.claim_due(clock.now, 10, 2) == []  # not yet due
        assert queue.next_due() == waiting.next_at
        clock.now = waiting.next_at
        assert [d.id for d in queue.claim_due(clock.now, 10, 2)] == [a.id]
        queue.finish(a.id, Outcome(None, error="timeout"))
        clock.now += 3 * 86400  # past the two-day window: expires instead of being claimed
        assert queue.claim_due(clock.now, 10, 2) == []
        assert queue.stats().counts[DeliveryState.DEAD] == 2
        assert "expired" in (queue.get(a.id).last_error or "")


def test_crash_recovery_and_delivered_never_claimed_again(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "q.db"
    queue = _open(path, clock)
    queue.enqueue("act", [f"https://h{i}.example/inbox" for i in range(4)], b"body")
    claimed = queue.claim_due(clock.now, 10, 2)
    assert len(claimed) == 4
    queue.finish(claimed[0].id, Outcome(200))
    queue._conn.close()  # the process dies: no finish for the other three
    clock.now += 1
    with DeliveryQueue.open(path, clock=clock, recover=False) as viewer:
        assert viewer.stats().counts[DeliveryState.IN_FLIGHT] == 3  # a viewer changes nothing
    with _open(path, clock) as reopened:
        assert reopened.stats().counts[DeliveryState.QUEUED] == 3
        retried = reopened.claim_due(clock.now, 10, 2)
        assert sorted(d.id for d in retried) == sorted(d.id for d in claimed[1:])
        assert all(d.attempts == 2 and d.body == b"body" for d in retried)
        for d in retried:
            reopened.finish(d.id, Outcome(202))
        assert reopened.enqueue("act", [claimed[0].inbox], b"body") == 0
        clock.now += 10 * 86400
        assert reopened.claim_due(clock.now, 10, 2) == []
        assert reopened.stats().counts[DeliveryState.DELIVERED] == 4


# -- a real receiver on 127.0.0.1 ------------------------------------------------------------


@dataclass
class Receiver:
    """An inbox server: counts POSTs per path, de-duplicates by activity id like Mastodon."""

    fail_first: int = 0  # answer 503 to the first N POSTs of each path
    status_for: dict[str, int] = field(default_factory=dict)  # fixed status for some paths
    delay: float = 0.0
    on_arrival: Callable[[int], None] | None = None
    url: str = ""
    posts: Counter[str] = field(default_factory=Counter)
    accepted: Counter[tuple[str, str]] = field(default_factory=Counter)  # 2xx sent
    arrived: Counter[tuple[str, str]] = field(default_factory=Counter)
    seen: set[tuple[str, str]] = field(default_factory=set)  # the receiver's de-dup
    active: int = 0
    max_active: int = 0

    def app(self) -> QuartTrio:
        app = QuartTrio("test_inbox")

        @app.post("/<path:path>")
        async def inbox(path: str) -> Response:
            activity = json.loads(await request.get_data())["id"]
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                self.posts[path] += 1
                self.arrived[(path, activity)] += 1
                if self.on_arrival is not None:
                    self.on_arrival(sum(self.arrived.values()))
                if path in self.status_for:
                    response = Response("", status=self.status_for[path])
                elif self.posts[path] <= self.fail_first:
                    response = Response("busy", status=503, headers={"Retry-After": "0"})
                else:  # processed at once; the answer is slow (hypercorn drops it if the
                    self.seen.add((path, activity))  # sender dies meanwhile)
                    self.accepted[(path, activity)] += 1
                    response = Response("", status=202)
                await trio.sleep(self.delay)
                return response
            finally:
                self.active -= 1

        return app


async def serve_receiver(
    receiver: Receiver, *, task_status: trio.TaskStatus[Receiver] = trio.TASK_STATUS_IGNORED
) -> None:
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(serve, receiver.app(), config)
        receiver.url = urls[0].rstrip("/")
        task_status.started(receiver)


def http_sender(client: httpx.AsyncClient):
    async def send(inbox: str, body: bytes) -> Outcome:
        try:
            response = await client.post(
                inbox, content=body, headers={"content-type": "application/activity+json"}
            )
        except httpx.TransportError as exc:
            return Outcome.transport_error(repr(exc))
        return Outcome.from_http(
            response.status_code, response.headers.get("retry-after"), now=time.time()
        )

    return send


async def _until_settled(queue: DeliveryQueue) -> None:
    while True:
        counts = (await trio.to_thread.run_sync(queue.stats)).counts
        pending = (DeliveryState.QUEUED, DeliveryState.IN_FLIGHT, DeliveryState.RETRY_WAIT)
        if not any(counts[state] for state in pending):
            return
        await trio.sleep(0.02)


async def test_worker_delivers_each_row_exactly_once(tmp_path: Path) -> None:
    receivers = [Receiver(fail_first=2, delay=0.01, status_for={"gone/inbox": 410}) for _ in "abc"]
    queue = DeliveryQueue.open(tmp_path / "q.db", policy=FAST)
    activities = [f"https://me.example/activities/{n}" for n in range(3)]
    paths = [f"users/{i}/inbox" for i in range(4)]
    with trio.fail_after(25):
        async with trio.open_nursery() as nursery:
            for receiver in receivers:
                await nursery.start(serve_receiver, receiver)
            async with httpx.AsyncClient(timeout=5) as client:
                worker = DeliveryWorker(queue, http_sender(client), max_concurrency=8, per_host=2)
                await nursery.start(worker.run)
                for activity in activities:
                    inboxes = [f"{r.url}/{p}" for r in receivers for p in [*paths, "gone/inbox"]]
                    body = json.dumps({"id": activity, "type": "Create"}).encode()
                    queue.enqueue(activity, inboxes, body)
                    worker.wake()
                await _until_settled(queue)
                nursery.cancel_scope.cancel()
    stats = queue.stats().counts
    assert stats[DeliveryState.DELIVERED] == len(receivers) * len(paths) * len(activities)
    assert stats[DeliveryState.DEAD] == len(receivers) * len(activities)
    for receiver in receivers:
        assert receiver.max_active <= 2  # per-host limit, seen by the server itself
        assert all(receiver.posts[p] >= 2 for p in paths)  # the 503s really happened
        assert receiver.accepted == Counter({(p, a): 1 for p in paths for a in activities})
        assert receiver.posts["gone/inbox"] == len(activities)  # 410: dead after one try
    assert all(d.delivered_at is not None for d in queue.rows("delivered", limit=1000))
    queue.close()


CHILD = textwrap.dedent(
    """
    import sys, time, httpx, trio
    from activitypub_bridge.delivery_queue import DeliveryQueue
    from activitypub_bridge.delivery_schedule import Outcome, RetryPolicy
    from activitypub_bridge.delivery_worker import DeliveryWorker

    async def main():
        policy = RetryPolicy(first_delay=0.02, max_delay=0.1, max_age=60.0)
        queue = DeliveryQueue.open(sys.argv[1], policy=policy)
        async with httpx.AsyncClient(timeout=5) as client:
            async def send(inbox, body):
                try:
                    r = await client.post(inbox, content=body)
                except httpx.TransportError as exc:
                    return Outcome.transport_error(repr(exc))
                return Outcome.from_http(r.status_code, r.headers.get("retry-after"),
                                         now=time.time())
            worker = DeliveryWorker(queue, send, max_concurrency=8, per_host=2)
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.run)
                while True:  # exit once nothing is pending
                    counts = (await trio.to_thread.run_sync(queue.stats)).counts
                    if not (counts["queued"] or counts["in-flight"] or counts["retry-wait"]):
                        nursery.cancel_scope.cancel()
                    await trio.sleep(0.02)
        queue.close()

    trio.run(main)
    """
)


@pytest.mark.slow
async def test_kill_9_mid_delivery_then_restart(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    activities = [f"https://me.example/activities/{n}" for n in range(3)]
    inbox_paths = [f"users/{i}/inbox" for i in range(8)]
    receivers = [Receiver(delay=0.03) for _ in "ab"]
    child: list[subprocess.Popen[bytes]] = []
    killed_at: list[int] = []

    def kill_on_tenth(total: int) -> None:
        if total == 10 and not killed_at:  # a request is in flight at this very moment
            child[0].send_signal(signal.SIGKILL)
            killed_at.append(total)

    receivers[0].on_arrival = receivers[1].on_arrival = kill_on_tenth
    with trio.fail_after(25):
        async with trio.open_nursery() as nursery:
            for receiver in receivers:
                await nursery.start(serve_receiver, receiver)
            with DeliveryQueue.open(path) as queue:
                for activity in activities:
                    body = json.dumps({"id": activity, "type": "Create"}).encode()
                    inboxes = [f"{r.url}/{p}" for r in receivers for p in inbox_paths]
                    queue.enqueue(activity, inboxes, body)
            cmd = [sys.executable, "-c", CHILD, str(path)]
            child.append(subprocess.Popen(cmd, cwd=REPO))
            first = await trio.to_thread.run_sync(child[0].wait)
            assert first == -signal.SIGKILL and killed_at == [10]
            with DeliveryQueue.open(path) as queue:  # what the crash left behind
                left = queue.stats().counts
            assert left[DeliveryState.DELIVERED] < len(activities) * len(inbox_paths) * 2
            second = await trio.run_process(cmd, cwd=REPO, check=False)
            assert second.returncode == 0
            nursery.cancel_scope.cancel()
    expected = {(p, a) for p in inbox_paths for a in activities}
    with DeliveryQueue.open(path) as queue:
        assert queue.stats().counts[DeliveryState.DELIVERED] == len(expected) * 2
    accepted_twice = 0
    for receiver in receivers:
        assert set(receiver.arrived) == expected  # at least once to the network
        assert receiver.seen == expected  # exactly once after the receiver's de-dup by id
        accepted_twice += sum(1 for n in receiver.accepted.values() if n > 1)
    # The POST in flight at the kill was accepted, its 202 never recorded, so it was sent again:
    # only the receiver's de-dup by activity id makes that exactly once.
    assert accepted_twice >= 1
