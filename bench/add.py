"""Benchmark: ``artdag add``'s importer against plain hashlib sha256 over the same bytes.

Imports files of 64 MiB and 256 MiB (random bytes) into a fresh embedded store, each import in
its own process so that its peak RSS is its own, and prints a table plus a last line of
``key=value`` pairs for the 256 MiB run. The baseline is sha256 over the same file, read in
1 MiB pieces, in the same run (best of 3); each import is also the best of ``--runs`` (3), its
peak RSS the worst. The store fsyncs every block before the import returns (``--sync batch``,
the default). Target: ratio >= 0.5 and peak RSS flat with file size.

    .venv/bin/python -m bench.add [--sizes 64,256] [--sync batch|always|never] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def make_file(path: Path, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))
        f.flush()
        os.fsync(f.fileno())  # so its write-back does not run during the measurement


def sha256_rate(path: Path) -> float:
    buf = bytearray(MIB)
    view = memoryview(buf)
    h = hashlib.sha256()
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return path.stat().st_size / MIB / (time.perf_counter() - start)


def child(path: str, store: str, sync: str) -> None:
    import trio

    from dag import FlatFsBlockstore, cid_to_str, import_file

    async def run() -> dict[str, object]:
        blockstore = FlatFsBlockstore(store, sync=sync)  # type: ignore[arg-type]
        start = time.perf_counter()
        result = await import_file(blockstore, path)
        elapsed = time.perf_counter() - start
        await blockstore.aclose()
        return {"seconds": elapsed, "cid": cid_to_str(result.cid), "blocks": result.blocks}

    out = trio.run(run)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256", help="file sizes in MiB, comma separated")
    parser.add_argument("--sync", default="batch", choices=["always", "batch", "never"])
    parser.add_argument("--runs", type=int, default=3, help="imports per size; the best counts")
    parser.add_argument("--dir", help="work directory (default: a temp dir on the same disk)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.dir) if args.dir else Path(__file__).resolve().parent / "out"
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        for size in sizes:
            data = Path(tmp) / f"in-{size}.bin"
            make_file(data, size)
            sha = max(sha256_rate(data) for _ in range(3))
            runs = []
            for attempt in range(args.runs):
                store = Path(tmp) / f"store-{size}-{attempt}"
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.add",
                        "--child",
                        str(data),
                        str(store),
                        args.sync,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(proc.stdout))
                shutil.rmtree(store)
            res = min(runs, key=lambda r: r["seconds"])
            res["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
            add = size / res["seconds"]
            rows.append((size, add, sha, add / sha, res["peak_rss_mib"], res["cid"]))
            data.unlink()
    head = ("file MiB", "add MiB/s", "sha256 MiB/s", "ratio", "peak RSS MiB")
    print(f"{head[0]:>8} {head[1]:>10} {head[2]:>13} {head[3]:>6} {head[4]:>13}  root")
    for size, add, sha, ratio, rss, cid in rows:
        print(f"{size:>8} {add:>10.0f} {sha:>13.0f} {ratio:>6.2f} {rss:>13.1f}  {cid}")
    size, add, sha, ratio, rss, _ = rows[-1]
    flat = rows[-1][4] / rows[0][4] if len(rows) > 1 else 1.0
    print(f"sync={args.sync} rss_growth={flat:.2f}x from {rows[0][0]} MiB to {size} MiB")
    print(f"add_mib_s={add:.0f} sha256_mib_s={sha:.0f} ratio={ratio:.2f} peak_rss_mib={rss:.1f}")


if __name__ == "__main__":
    main()
