"""Benchmark: the ``/ipfs/<cid>`` gateway against nginx (Debian) serving the same bytes.

    .venv/bin/python -m bench.gateway [--mib 256] [--runs 5] [--dir DIR]

A real ``artdag daemon`` (``ARTDAG_P2P=false``, its own temp home, embedded flat-file store)
gets a ``--mib`` MiB file of random bytes through its upload API; nginx, started on
127.0.0.1:<free port> with a minimal config in the same temp dir (``sendfile on``, no access
log, pid file in the temp dir), serves the same bytes from a file. Each server is asked for
the whole file ``--runs`` times (median counts), plus a 1 MiB ``Range`` request from the middle
of the file (video seeking: what matters there is the time to the first byte).

The client is ``curl -o /dev/null -w ...``: C, one connection, bytes to /dev/null, so on this
2-core machine it costs far less CPU than the servers and does not cap either of them (an
httpx client in Python would spend about as much CPU per byte as the gateway does and measure
itself). ``time_starttransfer`` is the TTFB (connect included, the same for both servers);
MiB/s is the size over ``time_total``. Every whole-file answer's size is checked.

Target: the gateway at least half of nginx's throughput. The last line is the summary:
``gateway_mib_s=... nginx_mib_s=... ratio=... ttfb_ms=...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness.daemons import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]

MIB = 1 << 20
NGINX = "/usr/sbin/nginx"
RANGE_BYTES = MIB


@dataclass(frozen=True)
class Fetch:
    ttfb_s: float
    total_s: float
    size: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_file(path: Path, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))


def curl(url: str, range_header: str | None = None) -> Fetch:
    out_format = "%{time_starttransfer} %{time_total} %{size_download}"
    args = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", out_format]
    if range_header:
        args += ["-H", f"Range: {range_header}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    ttfb, total, size = out.split()
    return Fetch(float(ttfb), float(total), int(size))


def nginx_conf(prefix: Path, port: int, root: Path) -> Path:
    # As root, nginx's workers would drop to "nobody", who cannot read a 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    types {{ application/octet-stream bin; }}
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    (prefix / "tmp").mkdir(exist_ok=True)
    return conf


def start_nginx(prefix: Path, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = nginx_conf(prefix, port, root)
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:  # nginx has no readiness signal in the foreground: poll its port
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nginx exited: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("nginx did not listen within 10 s") from None
            time.sleep(0.05)


def measure(url: str, size: int, runs: int) -> tuple[list[Fetch], list[Fetch]]:
    curl(url)  # warm-up: page cache, connection setup paths, the gateway's first request
    whole = []
    for _ in range(runs):
        got = curl(url)
        if got.size != size:
            raise RuntimeError(f"{url}: got {got.size} bytes, expected {size}")
        whole.append(got)
    mid = size // 2
    ranges = [curl(url, f"bytes={mid}-{mid + RANGE_BYTES - 1}") for _ in range(runs)]
    for got in ranges:
        if got.size != min(RANGE_BYTES, size - mid):
            raise RuntimeError(f"{url}: range got {got.size} bytes")
    return whole, ranges


def summarise(size: int, whole: list[Fetch], ranges: list[Fetch]) -> dict[str, float]:
    rates = [size / MIB / f.total_s for f in whole]
    return {
        "mib_s": statistics.median(rates),
        "mib_s_min": min(rates),
        "mib_s_max": max(rates),
        "ttfb_ms": statistics.median(f.ttfb_s for f in whole) * 1000,
        "range_ttfb_ms": statistics.median(f.ttfb_s for f in ranges) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="asset size in MiB")
    parser.add_argument("--runs", type=int, default=5, help="requests per server; median counts")
    parser.add_argument("--dir", help="work directory (default: a temp dir under bench/out)")
    args = parser.parse_args()
    if shutil.which("curl") is None or not Path(NGINX).exists():
        sys.exit("bench/gateway.py needs curl and nginx (Debian: apt-get install curl nginx)")
    base = Path(args.dir) if args.dir else ROOT / "bench" / "out"
    base.mkdir(parents=True, exist_ok=True)
    size = args.mib * MIB
    with tempfile.TemporaryDirectory(dir=base) as tmp_name:
        tmp = Path(tmp_name)
        www = tmp / "www"
        www.mkdir()
        make_file(www / "asset.bin", args.mib)
        daemon = DaemonProcess(tmp / "home", ARTDAG_P2P="false").start()
        nginx: subprocess.Popen[bytes] | None = None
        try:
            started = time.perf_counter()
            with open(www / "asset.bin", "rb") as f:
                cid = daemon.add_bytes(f.read(), "asset.bin")["cid"]
            added_s = time.perf_counter() - started
            nginx, nginx_url = start_nginx(tmp, www)
            gw = summarise(size, *measure(f"{daemon.api_url}/ipfs/{cid}", size, args.runs))
            ng = summarise(size, *measure(f"{nginx_url}/asset.bin", size, args.runs))
        finally:
            daemon.stop()
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)
    print(f"{args.mib} MiB random asset {cid} (added in {added_s:.1f} s); median of {args.runs}")
    head = ("server", "MiB/s", "min", "max", "TTFB ms", "range TTFB ms")
    print(f"{head[0]:<8} {head[1]:>8} {head[2]:>8} {head[3]:>8} {head[4]:>8} {head[5]:>14}")
    for name, row in (("gateway", gw), ("nginx", ng)):
        print(
            f"{name:<8} {row['mib_s']:>8.0f} {row['mib_s_min']:>8.0f} {row['mib_s_max']:>8.0f}"
            f" {row['ttfb_ms']:>8.1f} {row['range_ttfb_ms']:>14.1f}"
        )
    ratio = gw["mib_s"] / ng["mib_s"]
    print(f"target ratio >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}")
    print(
        f"gateway_mib_s={gw['mib_s']:.0f} nginx_mib_s={ng['mib_s']:.0f} ratio={ratio:.2f}"
        f" ttfb_ms={gw['ttfb_ms']:.1f} range_ttfb_ms={gw['range_ttfb_ms']:.1f}"
        f" nginx_ttfb_ms={ng['ttfb_ms']:.1f}"
    )


if __name__ == "__main__":
    main()
