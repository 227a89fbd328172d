"""P2P benchmark: gossip propagation, block transfer and idle memory, each beside a baseline.

    .venv/bin/python bench/p2p.py [--daemons 10] [--messages 40] [--mib 64]

1. Gossip: ``--daemons`` real ``artdag daemon`` processes on 127.0.0.1 (daemon i bootstraps to
   daemon 0 and daemon i-1). Daemon 0 publishes ``--messages`` records (one small asset each, so
   a signed head goes out on ``/artdag/1/heads``), ten a second; every daemon's gossip log
   (``GET /api/v1/p2p/gossip``) gives the wall-clock time each head arrived. Latency = arrival
   minus the moment daemon 0's publish returned. Baseline: the same number of bare py-libp2p
   gossipsub processes (``bench/_bare_gossip.py``: same host, transport and router settings,
   no artdag envelope, signature check, validator or repo sync), same topology and rate.
2. Transfer (the other daemons stopped first, so two daemons share the machine as the two
   bare hosts of the baseline do): a ``--mib`` MiB random file added to daemon 0, fetched by
   daemon 1 with
   ``POST /api/v1/p2p/get`` (bitswap, every block verified and written); baseline: one raw
   Yamux+Noise stream between two bare hosts (``bench/_transfer.py``).
3. Idle RSS of each daemon after the gossip run has settled.

Targets (issue 3): gossip p95 < 50 ms for 10 daemons; transfer >= 0.6 x the raw stream; idle
RSS < 150 MiB. The last line is the summary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import trio

from bench._transfer import measure_raw_stream
from tests.harness.daemons import DaemonProcess, wait_until

MIB = 1 << 20


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def start_daemons(root: Path, n: int) -> list[DaemonProcess]:
    daemons = [DaemonProcess(root / "d0").start()]
    for i in range(1, n):
        boot = [daemons[0].p2p_addr] + ([daemons[i - 1].p2p_addr] if i > 1 else [])
        daemons.append(DaemonProcess(root / f"d{i}", bootstrap=boot).start())
    return daemons


def gossip_through_daemons(
    daemons: list[DaemonProcess], messages: int, rate: float = 10.0
) -> list[float]:
    wait_until(
        lambda: (
            all(len(d.peers()) >= 1 for d in daemons)
            and len(daemons[0].peers()) >= len(daemons) - 1
        ),
        60,
        "every daemon connected",
    )
    time.sleep(3)  # a few 1 s heartbeats so every mesh is grafted
    origin = daemons[0]
    for i in range(messages):
        t0 = time.monotonic()
        origin.add_bytes(os.urandom(64) + i.to_bytes(4, "big"), f"g{i}.bin")
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - t0)))
    did = origin.info["did"]
    out = {
        e["seq"]: e["at"]
        for e in origin.api("GET", "/api/v1/p2p/gossip", params={"limit": 2000}).json()["events"]
        if e["direction"] == "out"
    }

    def arrivals() -> list[float]:
        got = []
        for d in daemons[1:]:
            events = d.api("GET", "/api/v1/p2p/gossip", params={"limit": 2000}).json()["events"]
            for e in events:
                if e["direction"] == "in" and e.get("repo") == did and e.get("seq") in out:
                    got.append((e["at"] - out[e["seq"]]) * 1000)
        return got

    wanted = messages * (len(daemons) - 1)
    try:
        wait_until(lambda: len(arrivals()) >= wanted, 30, "every head on every daemon", 0.5)
    except AssertionError:
        print(f"warning: only {len(arrivals())} of {wanted} head deliveries arrived")
    return arrivals()


def bare_gossip(n: int, messages: int, rate: float = 10.0) -> list[float]:
    procs: list[subprocess.Popen[str]] = []
    addrs: list[str] = []
    lines: list[list[str]] = []

    def spawn(boot: list[str], publish: int) -> None:
        args = [sys.executable, "-m", "bench._bare_gossip", "bench", "--bootstrap", *boot]
        if publish:
            args += ["--publish", str(publish), "--rate", str(rate)]
        p = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert p.stdout is not None
        first = p.stdout.readline().split()
        if not first or first[0] != "ADDR":
            raise RuntimeError("bare gossip node did not start")
        addrs.append(first[1])
        sink: list[str] = []
        lines.append(sink)
        threading.Thread(
            target=lambda: sink.extend(iter(p.stdout.readline, "")), daemon=True
        ).start()
        procs.append(p)

    try:
        spawn([], messages)
        for i in range(1, n):
            spawn([addrs[0]] + ([addrs[i - 1]] if i > 1 else []), 0)
        time.sleep(3)
        assert procs[0].stdin is not None
        procs[0].stdin.write("GO\n")
        procs[0].stdin.flush()
        wanted = messages * (n - 1)

        def received() -> list[float]:
            return [
                (float(parts[2]) - float(parts[1])) * 1000
                for sink in lines[1:]
                for parts in (ln.split() for ln in list(sink))
                if parts and parts[0] == "RECV"
            ]

        try:
            wait_until(lambda: len(received()) >= wanted, 30, "bare gossip deliveries", 0.2)
        except AssertionError:
            print(f"warning: only {len(received())} of {wanted} bare deliveries arrived")
        return received()
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def transfer_between_daemons(a: DaemonProcess, b: DaemonProcess, mib: int) -> float:
    data = os.urandom(mib * MIB)
    asset = a.add_bytes(data, "big.bin")
    t0 = time.monotonic()
    done = None
    with (
        b.http(timeout=600) as client,
        client.stream("POST", "/api/v1/p2p/get", params={"cid": asset["cid"]}) as response,
    ):
        for line in response.iter_lines():
            if '"done"' in line or '"error"' in line:
                done = line
                break
    seconds = time.monotonic() - t0
    if done is None or '"error"' in done:
        raise RuntimeError(f"transfer failed: {done}")
    got = b.api("GET", f"/api/v1/assets/{asset['cid']}/content").content
    if got != data:
        raise RuntimeError("transferred bytes differ")
    return mib / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemons", type=int, default=10)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="artdag-bench-p2p-") as tmp:
        daemons = start_daemons(Path(tmp), args.daemons)
        try:
            lat = gossip_through_daemons(daemons, args.messages, args.rate)
            time.sleep(5)
            rss = [psutil.Process(d.pid).memory_info().rss / MIB for d in daemons]
            for d in daemons[2:]:  # the transfer is between two daemons, like the baseline
                d.stop()
            time.sleep(2)
            transfer = transfer_between_daemons(daemons[0], daemons[1], args.mib)
        finally:
            for d in daemons:
                d.stop()
    base = bare_gossip(args.daemons, args.messages, args.rate)
    raw = trio.run(measure_raw_stream, args.mib * MIB).mib_s

    p50, p95 = statistics.median(lat), pct(lat, 95)
    b50, b95 = statistics.median(base), pct(base, 95)
    idle = max(rss)
    print()
    print(f"{'measure':<34}{'artdag':>12}{'baseline':>12}{'ratio':>8}")
    label = f"gossip p50 (ms), {args.daemons} daemons"
    print(f"{label:<34}{p50:>12.1f}{b50:>12.1f}{p50 / b50:>8.2f}")
    print(f"{'gossip p95 (ms)':<34}{p95:>12.1f}{b95:>12.1f}{p95 / b95:>8.2f}")
    print(f"{'deliveries':<34}{len(lat):>12}{len(base):>12}")
    label = f"transfer {args.mib} MiB (MiB/s)"
    print(f"{label:<34}{transfer:>12.1f}{raw:>12.1f}{transfer / raw:>8.2f}")
    print(f"{'idle RSS per daemon (MiB, max)':<34}{idle:>12.1f}")
    print(f"{'idle RSS per daemon (MiB, mean)':<34}{statistics.mean(rss):>12.1f}")
    print(
        f"gossip_p50_ms={p50:.1f} gossip_p95_ms={p95:.1f} baseline_p95_ms={b95:.1f} "
        f"transfer_mib_s={transfer:.1f} raw_mib_s={raw:.1f} transfer_ratio={transfer / raw:.2f} "
        f"idle_rss_mib={idle:.1f}"
    )


if __name__ == "__main__":
    main()
