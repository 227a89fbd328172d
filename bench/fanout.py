"""ActivityPub fan-out benchmark: one post to N followers through the real delivery path.

    .venv/bin/python -m bench.fanout [--followers 1000] [--hosts 50] [--style rfc9421]

The path measured is the daemon's: the post is enqueued in a fresh
:class:`~activitypub_bridge.delivery_queue.DeliveryQueue` (one SQLite row per follower inbox,
WAL, ``synchronous=FULL``), a :class:`~activitypub_bridge.delivery_worker.DeliveryWorker`
drains it, and its ``send`` is :meth:`BridgeClient.post` (sign, SSRF guard, POST, double knock
on 401). The clock runs from the enqueue until ``stats()`` shows no row queued or in flight.

The inboxes: ``--hosts`` listening ports of 127.0.0.1 in ONE child process (this script with
``--serve``), ``--followers`` / ``--hosts`` personal inboxes per port, so every follower is a
POST of its own (real shared inboxes would be de-duplicated). The child is a minimal HTTP/1.1
server on trio + h11 rather than hypercorn + an ASGI app: no framework, so the server's own
cost stays small beside the verification it must do. Every POST is verified with
:func:`verify_request` against the sender's public key, over the absolute URL the sender
signed (``http://127.0.0.1:PORT/path``); a bad signature gets a 401 and counts as a failure.
The child reports its counts on ``GET /_stats``. Being a separate process, its CPU is not
charged to the client, but on this 2-core machine both share the cores (with other users'
work too): the CPU columns show who used what.

Rows: signing alone (``--sign`` signatures of the post, each to another inbox URL) in both
forms, verifying alone, the queue alone (enqueue, then per row the claim/finish/next_due calls
the worker makes, no network); then the fan-out with the worker's defaults (16 in flight, 2
per host) for each first-knock form, one row with more concurrency (64 in flight, 4 per host),
and for scale the same POSTs through the client alone (same order and limits, no queue, no
worker), which shows what the queue and worker add. ratio = deliveries/s of the fan-out
(``--style``, default limits) / signatures/s of that form alone: the share of the signing rate
the whole delivery path keeps.

The last line is the summary:
``followers=... total_s=... deliveries_per_s=... sign_only_per_s=... ratio=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import psutil
import trio

from activitypub_bridge.delivery_queue import DeliveryQueue
from activitypub_bridge.delivery_schedule import DeliveryState, Outcome
from activitypub_bridge.delivery_worker import DeliveryWorker
from activitypub_bridge.http_client import BridgeClient, SignatureStyle, Signer
from activitypub_bridge.http_signatures import (
    SignatureRejected,
    sign_cavage,
    sign_rfc9421,
    verify_request,
)
from activitypub_bridge.keys import (
    generate_actor_key,
    load_public_key_pem,
    public_key_pem,
)

ACTOR = "https://bench.example/users/alice"
KEY_ID = f"{ACTOR}#main-key"
ACTIVITY_ID = f"{ACTOR}/statuses/1/activity"
ACTIVITY_JSON = "application/activity+json"
RUN_TIMEOUT_S = 300.0
STYLES: tuple[SignatureStyle, ...] = ("rfc9421", "cavage")
HEADERS = {"Content-Type": ACTIVITY_JSON, "Accept": ACTIVITY_JSON}  # what BridgeClient.post signs


# -- the inbox server (child process) --------------------------------------------------------
@dataclass
class ServerCounts:
    accepted: int = 0
    rejected: int = 0
    connections: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "connections": self.connections,
            "reasons": dict(self.reasons),
        }


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(65536))


def _answer(
    port: int, request: h11.Request, body: bytes, key: Any, counts: ServerCounts
) -> tuple[int, bytes]:
    method = request.method.decode()
    target = request.target.decode()
    if method == "GET" and target == "/_stats":
        return 200, json.dumps(counts.to_json()).encode()
    if method != "POST":
        return 405, b""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
    url = f"http://127.0.0.1:{port}{target}"
    try:
        verify_request(method, url, headers, body, lambda kid: key if kid == KEY_ID else None)
    except SignatureRejected as exc:
        counts.rejected += 1
        counts.reasons[str(exc.reason)] += 1
        return 401, str(exc).encode()
    counts.accepted += 1
    return 202, b""


async def _serve_connection(
    port: int, key: Any, counts: ServerCounts, stream: trio.SocketStream
) -> None:
    counts.connections += 1
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request = await _next_event(conn, stream)
            if not isinstance(request, h11.Request):
                return  # ConnectionClosed: the client dropped a keep-alive connection
            chunks: list[bytes] = []
            while not isinstance(event := await _next_event(conn, stream), h11.EndOfMessage):
                if isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
            status, payload = _answer(port, request, b"".join(chunks), key, counts)
            headers = [("Content-Length", str(len(payload))), ("Content-Type", "text/plain")]
            out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
            if payload:
                out += conn.send(h11.Data(data=payload)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(out)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


async def serve(hosts: int, key_file: Path) -> None:
    """Listen on ``hosts`` ports of 127.0.0.1, print ``READY port ...``, serve until stdin EOF."""
    key = load_public_key_pem(key_file.read_bytes())
    counts = ServerCounts()
    async with trio.open_nursery() as nursery:
        ports = []
        for _ in range(hosts):
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=256)
            port = listeners[0].socket.getsockname()[1]
            handler = partial(_serve_connection, port, key, counts)
            await nursery.start(trio.serve_listeners, handler, listeners)
            ports.append(port)
        print("READY " + " ".join(map(str, ports)), flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some(1024):
            pass
        nursery.cancel_scope.cancel()


class InboxServer:
    """The child process of :func:`serve`; ``ports`` once it said READY."""

    def __init__(self, hosts: int, key_file: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.fanout",
                "--serve",
                "--hosts",
                str(hosts),
                "--key-file",
                str(key_file),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            self.stop()
            raise RuntimeError(f"inbox server did not start (said {line!r})")
        self.ports = [int(p) for p in line[1:]]
        self._ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        t = self._ps.cpu_times()
        return t.user + t.system

    async def counts(self) -> dict[str, Any]:
        async with httpx.AsyncClient(trust_env=False) as client:
            got = await client.get(f"http://127.0.0.1:{self.ports[0]}/_stats")
            result: dict[str, Any] = got.json()
            return result

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the client side -------------------------------------------------------------------------
def post_body(followers: int) -> bytes:
    """A Create of a Note like the bridge's, addressed to the followers collection."""
    note = {
        "id": f"{ACTOR}/statuses/1",
        "type": "Note",
        "attributedTo": ACTOR,
        "content": "<p>New work: <a href='https://bench.example/w/1'>study in ochre</a></p>",
        "published": "2024-05-01T12:00:00Z",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [f"{ACTOR}/followers"],
        "attachment": [
            {
                "type": "Image",
                "mediaType": "image/png",
                "url": "https://bench.example/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            }
        ],
    }
    activity = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": ACTIVITY_ID,
        "type": "Create",
        "actor": ACTOR,
        "to": note["to"],
        "cc": note["cc"],
        "object": note,
        "summary": f"to {followers} followers",
    }
    return json.dumps(activity, separators=(",", ":")).encode()


def inbox_urls(ports: list[int], followers: int) -> list[str]:
    """Follower i's personal inbox on port i mod hosts (so consecutive followers differ in host)."""
    return [f"http://127.0.0.1:{ports[i % len(ports)]}/users/f{i}/inbox" for i in range(followers)]


@dataclass(frozen=True)
class Rate:
    label: str
    count: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds


Signed = list[tuple[str, dict[str, str]]]


def sign_only(
    style: SignatureStyle, urls: list[str], body: bytes, signer: Signer
) -> tuple[Rate, Signed]:
    """Sign the post once per URL as BridgeClient.post does (same headers, same function)."""
    sign = sign_rfc9421 if style == "rfc9421" else sign_cavage
    signed: Signed = []
    cpu, start = time.process_time(), time.perf_counter()
    for url in urls:
        signed.append((url, sign("POST", url, HEADERS, body, signer.key_id, signer.private_key)))
    rate = Rate(
        f"sign only, {style}",
        len(urls),
        time.perf_counter() - start,
        time.process_time() - cpu,
    )
    return rate, signed


def verify_only(style: SignatureStyle, signed: Signed, body: bytes, signer: Signer) -> Rate:
    """Verify the requests :func:`sign_only` signed, as the inbox server does."""
    public = signer.private_key.public_key()

    def lookup(kid: str) -> Any:
        return public if kid == KEY_ID else None

    cpu, start = time.process_time(), time.perf_counter()
    for url, headers in signed:
        verify_request("POST", url, headers, body, lookup)
    return Rate(
        f"verify only, {style}",
        len(signed),
        time.perf_counter() - start,
        time.process_time() - cpu,
    )


def queue_only(work: Path, inboxes: list[str], body: bytes) -> Rate:
    """The queue's own cost per delivery, no network: enqueue, then per row the calls the
    worker makes once a send finishes (claim one free slot, record the 2xx, look up next_due)."""
    cpu, start = time.process_time(), time.perf_counter()
    with DeliveryQueue.open(work / "queue-only.db") as queue:
        queue.enqueue(ACTIVITY_ID, inboxes, body)
        done = 0
        while claimed := queue.claim_due(time.time(), 1, 2):
            queue.finish(claimed[0].id, Outcome.from_http(202, now=time.time()))
            queue.next_due(time.time())
            done += 1
    if done != len(inboxes):
        raise RuntimeError(f"queue only: {done} rows of {len(inboxes)} went through")
    return Rate(
        "queue only (claim 1 + finish), no network",
        done,
        time.perf_counter() - start,
        time.process_time() - cpu,
    )


@dataclass(frozen=True)
class FanOut:
    label: str
    followers: int
    enqueue_s: float
    total_s: float
    cpu_s: float  # this (client) process
    server_cpu_s: float
    busy_cores: float  # the whole machine's, other users included
    outcomes: dict[str, int]
    failures: int  # client outcomes other than 2xx, plus the server's 401s
    connections: int  # TCP connections the server accepted during the run

    @property
    def per_s(self) -> float:
        return self.followers / self.total_s


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.system + t.nice)


async def _measured(
    label: str,
    followers: int,
    server: InboxServer,
    body_of_run: Callable[[], Awaitable[tuple[float, Counter[str]]]],
) -> FanOut:
    before = await server.counts()
    cpu, server_cpu, machine = time.process_time(), server.cpu_s(), _machine_busy()
    start = time.perf_counter()
    enqueue_s, outcomes = await body_of_run()
    total = time.perf_counter() - start
    busy = (_machine_busy() - machine) / total
    cpu, server_cpu = time.process_time() - cpu, server.cpu_s() - server_cpu
    after = await server.counts()
    rejected = after["rejected"] - before["rejected"]
    not_ok = sum(n for k, n in outcomes.items() if not k.startswith("2"))
    return FanOut(
        label,
        followers,
        enqueue_s,
        total,
        cpu,
        server_cpu,
        busy,
        dict(outcomes),
        not_ok + rejected,
        after["connections"] - before["connections"] - 1,  # minus the /_stats GET's own
    )


def _outcome_key(outcome: Outcome) -> str:
    return str(outcome.status) if outcome.status is not None else f"error: {outcome.error[:60]}"


async def fan_out_queued(
    work: Path,
    inboxes: list[str],
    body: bytes,
    signer: Signer,
    style: SignatureStyle,
    concurrency: int,
    per_host: int,
) -> tuple[float, Counter[str]]:
    """Enqueue one row per inbox, run the real worker with the real client until drained."""
    outcomes: Counter[str] = Counter()
    all_sent = trio.Event()
    path = work / f"queue-{style}-{concurrency}-{per_host}-{time.monotonic_ns()}.db"
    with DeliveryQueue.open(path) as queue:
        async with BridgeClient(allow_private=True, first_knock=style) as client:

            async def send(inbox: str, payload: bytes) -> Outcome:
                outcome = await client.post(inbox, payload, signer)
                outcomes[_outcome_key(outcome)] += 1
                if sum(outcomes.values()) >= len(inboxes):
                    all_sent.set()
                return outcome

            worker = DeliveryWorker(queue, send, max_concurrency=concurrency, per_host=per_host)
            start = time.perf_counter()
            added = await trio.to_thread.run_sync(queue.enqueue, ACTIVITY_ID, inboxes, body)
            enqueue_s = time.perf_counter() - start
            if added != len(inboxes):
                raise RuntimeError(f"enqueued {added} rows, expected {len(inboxes)}")
            with trio.fail_after(RUN_TIMEOUT_S):
                async with trio.open_nursery() as nursery:
                    await nursery.start(worker.run)
                    await all_sent.wait()
                    # the last outcomes are being recorded by the worker: wait for the rows
                    while True:
                        stats = await trio.to_thread.run_sync(queue.stats)
                        pending = (
                            stats.counts[DeliveryState.QUEUED]
                            + stats.counts[DeliveryState.IN_FLIGHT]
                        )
                        if pending == 0:
                            break
                        await trio.sleep(0.002)
                    nursery.cancel_scope.cancel()
            delivered = stats.counts[DeliveryState.DELIVERED]
            if delivered != len(inboxes):
                outcomes["not delivered (queue)"] += len(inboxes) - delivered
    return enqueue_s, outcomes


async def fan_out_direct(
    inboxes: list[str],
    body: bytes,
    signer: Signer,
    style: SignatureStyle,
    concurrency: int,
    per_host: int,
) -> tuple[float, Counter[str]]:
    """The same POSTs through the client alone: no queue, no worker, no SQLite.

    In the order the worker sends them (its claim takes rows by id, which follow the sorted
    inbox URLs, so host after host, ``per_host`` at a time): each host's inboxes are split into
    ``per_host`` lanes and ``concurrency`` tasks take lane after lane, one POST at a time.
    """
    outcomes: Counter[str] = Counter()
    by_host: dict[str, list[str]] = {}
    for inbox in sorted(inboxes):
        by_host.setdefault(urlsplit(inbox).netloc, []).append(inbox)
    lanes = iter([urls[k::per_host] for urls in by_host.values() for k in range(per_host)])
    async with BridgeClient(allow_private=True, first_knock=style) as client:

        async def one_task() -> None:
            for lane in lanes:
                for inbox in lane:
                    outcomes[_outcome_key(await client.post(inbox, body, signer))] += 1

        with trio.fail_after(RUN_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(one_task)
    return 0.0, outcomes


# -- the bench -------------------------------------------------------------------------------
async def fan_outs(
    args: argparse.Namespace, work: Path, server: InboxServer, signer: Signer, body: bytes
) -> list[FanOut]:
    inboxes = inbox_urls(server.ports, args.followers)
    other = next(s for s in STYLES if s != args.style)
    n = args.followers
    # untimed warm-up (imports, first connections): a few POSTs through the client
    await fan_out_direct(inboxes[: min(20, n)], body, signer, args.style, 4, 2)
    runs: list[FanOut] = []
    for label, style, conc, per_host in (
        (f"fan-out {args.style}, 16 / 2 per host", args.style, 16, 2),
        (f"fan-out {other}, 16 / 2 per host", other, 16, 2),
        (f"fan-out {args.style}, 64 / 4 per host", args.style, 64, 4),
    ):
        runs.append(
            await _measured(
                label,
                n,
                server,
                partial(fan_out_queued, work, inboxes, body, signer, style, conc, per_host),
            )
        )
    runs.append(
        await _measured(
            f"client only {args.style}, 16 / 2 per host",
            n,
            server,
            partial(fan_out_direct, inboxes, body, signer, args.style, 16, 2),
        )
    )
    return runs


def run(args: argparse.Namespace, work: Path) -> None:
    key = generate_actor_key()
    signer = Signer(KEY_ID, key)
    key_file = work / "actor.pub.pem"
    key_file.write_text(public_key_pem(key))
    body = post_body(args.followers)
    print(
        f"config: {os.cpu_count()} CPUs (shared with other users' work), "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{args.followers} followers on {args.hosts} inbox hosts "
        f"({args.followers / args.hosts:g} each), post {len(body)} bytes, RSA 2048, "
        f"first knock {args.style}"
    )
    server = InboxServer(args.hosts, key_file)
    try:
        sign_urls = inbox_urls(server.ports, args.sign)
        signs, verifies = {}, []
        for s in STYLES:
            signs[s], signed = sign_only(s, sign_urls, body, signer)
            verifies.append(verify_only(s, signed, body, signer))
        verifies.append(queue_only(work, inbox_urls(server.ports, args.followers), body))
        runs = trio.run(fan_outs, args, work, server, signer, body)
        final = trio.run(server.counts)
    finally:
        server.stop()

    print()
    print(f"{'measure (one at a time)':<42}{'count':>7}{'seconds':>9}{'per s':>9}{'CPU s':>8}")
    for rate in [*signs.values(), *verifies]:
        print(
            f"{rate.label:<42}{rate.count:>7}{rate.seconds:>9.3f}{rate.per_s:>9.1f}"
            f"{rate.cpu_s:>8.2f}"
        )
    print()
    print(
        f"{'fan-out (in flight / per host)':<38}{'posts':>7}{'total s':>9}{'deliv/s':>9}"
        f"{'CPU s':>8}{'srv CPU':>9}{'busy':>6}{'conns':>7}{'fail':>6}{'enq s':>7}"
    )
    for r in runs:
        enq = f"{r.enqueue_s:>7.3f}" if r.enqueue_s else f"{'-':>7}"
        print(
            f"{r.label:<38}{r.followers:>7}{r.total_s:>9.3f}{r.per_s:>9.1f}{r.cpu_s:>8.2f}"
            f"{r.server_cpu_s:>9.2f}{r.busy_cores:>6.2f}{r.connections:>7}{r.failures:>6}{enq}"
        )
    head = runs[0]
    sign_rate = signs[args.style].per_s
    ratio = head.per_s / sign_rate
    failures = sum(r.failures for r in runs)
    print()
    print(
        f"ratio = {head.label} deliveries/s / sign only {args.style} per s = "
        f"{head.per_s:.1f} / {sign_rate:.1f} = {ratio:.3f}"
    )
    print(
        f"queue + worker cost: {head.total_s:.3f} s queued vs {runs[-1].total_s:.3f} s "
        f"client only ({head.total_s / runs[-1].total_s:.2f}x)"
    )
    print(
        "CPU s: this process (signing, client, queue, worker); srv CPU: the inbox server child"
        " (h11 + verify_request);\n"
        "busy: the whole machine's busy cores during the run, other users included; conns: TCP"
        " connections the server\naccepted; fail: non-2xx outcomes plus the server's 401s;"
        " enq s: the enqueue, included in total s."
    )
    print(
        f"server totals: {final['accepted']} accepted, {final['rejected']} rejected "
        f"{final['reasons'] or ''}".rstrip()
    )
    for r in runs:
        if r.failures:
            print(f"FAILURES in {r.label}: {r.outcomes}", file=sys.stderr)
    print(
        f"followers={args.followers} total_s={head.total_s:.3f} deliveries_per_s={head.per_s:.3f} "
        f"sign_only_per_s={sign_rate:.3f} ratio={ratio:.3f}"
    )
    if failures:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50, help="inbox hosts (ports of 127.0.0.1)")
    parser.add_argument("--style", choices=STYLES, default="rfc9421", help="first knock")
    parser.add_argument(
        "--sign", type=int, help="signatures in the sign-only rows (default: --followers)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sign = args.followers if args.sign is None else args.sign
    if args.hosts < 1 or args.followers < args.hosts or args.sign < 1:
        parser.error("need --hosts >= 1, --followers >= --hosts and --sign >= 1")
    if args.serve:
        if args.key_file is None:
            parser.error("--serve needs --key-file")
        trio.run(serve, args.hosts, args.key_file)
        return
    with tempfile.TemporaryDirectory(prefix="artdag-bench-fanout-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
