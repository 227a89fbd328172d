"""Benchmark: garbage collection of the embedded store beside listing the same blocks.

One run builds a fresh FlatFs store (``sync="never"``, in ``bench/out`` or ``--dir``) holding
``--blocks`` blocks (default 100,000): UnixFS files of up to 174 raw leaves of 1-4 KiB random
bytes plus their dag-pb root, built with the sans-I/O :class:`dag.FileBuilder` and written with
``put_many``. Half the blocks belong to files pinned recursively, the other half to files no pin
reaches. It then times

- **list**: ``[cid async for cid in store.cids()]``, the store's public listing (one sorted
  ``os.scandir`` pass over the shard directories plus a CID per file), best of 2;
- **scan** (for reference): the bare ``os.scandir`` pass, names only, best of 2;
- **gc**: ``store.collect_garbage(grace_s=0)``: mark from the pins (only the dag-pb roots are
  read; raw leaves never are), the same directory scan, then a stat and an unlink per
  unreachable block, in one worker thread;

prints a table of blocks/s and the ratio gc_s/list_s, checks that exactly the reachable half
remains and that the freed bytes are exactly those of the unreachable half, and ends with the
summary line ``blocks=... gc_s=... list_s=... ratio=... freed_mib=...``. Both timings run with
the directory entries in the page cache (the build just wrote them).

    .venv/bin/python -m bench.gc [--blocks 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import trio
from rich.console import Console
from rich.table import Table

from dag import CID, Block, FileBuilder, FlatFsBlockstore
from dag.cids import multihash_key

MIB = 1 << 20
LEAVES_PER_FILE = 174  # one dag-pb root per file (Kubo's links per node)


class Half:
    """The blocks of one half: file roots, and multihash key -> size of every block."""

    def __init__(self) -> None:
        self.roots: list[CID] = []
        self.sizes: dict[bytes, int] = {}


async def build_half(store: FlatFsBlockstore, target: int, rng: random.Random) -> Half:
    """Files whose blocks add up to exactly ``target`` blocks, written in batches."""
    half = Half()
    pending: list[Block] = []
    remaining = target
    while remaining:
        leaves = min(LEAVES_PER_FILE, remaining - 1) if remaining >= 3 else 1
        builder = FileBuilder()
        blocks: list[Block] = []
        for _ in range(leaves):
            leaf, size = builder.make_leaf(os.urandom(rng.randint(1024, 4096)))
            blocks += builder.add_leaf(leaf, size)
        more, root = builder.finish()
        blocks += more
        remaining -= len(blocks)
        half.roots.append(root)
        for block in blocks:
            half.sizes[multihash_key(block.cid)] = len(block.data)
        pending += blocks
        if len(pending) >= 4096:
            await store.put_many(pending)
            pending = []
    await store.put_many(pending)
    assert len(half.sizes) == target, (len(half.sizes), target)
    return half


def scan_names(blocks_dir: Path) -> int:
    count = 0
    with os.scandir(blocks_dir) as shards:
        for shard in shards:
            if shard.is_dir():
                with os.scandir(shard.path) as entries:
                    count += sum(1 for e in entries if e.name.endswith(".data"))
    return count


async def run(total: int, base: Path) -> int:
    console = Console(highlight=False)
    rng = random.Random(9)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        store = FlatFsBlockstore(Path(tmp) / "store", sync="never")
        started = time.perf_counter()
        kept = await build_half(store, total // 2, rng)
        gone = await build_half(store, total - total // 2, rng)
        for root in kept.roots:
            await store.pin(root)
        build_s = time.perf_counter() - started
        freed_mib_expected = sum(gone.sizes.values()) / MIB
        console.print(
            f"built {total} blocks ({len(kept.roots)} pinned files, {len(gone.roots)} unpinned; "
            f"{(sum(kept.sizes.values()) + sum(gone.sizes.values())) / MIB:.1f} MiB) "
            f"in {build_s:.1f} s"
        )

        list_s = scan_s = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            listed = [cid async for cid in store.cids()]
            list_s = min(list_s, time.perf_counter() - start)
            start = time.perf_counter()
            scanned = scan_names(store.blocks_dir)
            scan_s = min(scan_s, time.perf_counter() - start)
        assert len(listed) == scanned == total, (len(listed), scanned, total)

        start = time.perf_counter()
        report = await store.collect_garbage(grace_s=0)
        gc_s = time.perf_counter() - start

        left = {multihash_key(cid) async for cid in store.cids()}
        await store.aclose()

    ok = (
        left == set(kept.sizes)
        and report.removed == len(gone.sizes)
        and report.freed_bytes == sum(gone.sizes.values())
        and report.marked == len(kept.sizes)
        and report.examined == total
    )
    table = Table(title=f"garbage collection over {total} blocks, half unreachable")
    for column in ("operation", "blocks", "seconds", "blocks/s"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    table.add_row("list: store.cids()", str(total), f"{list_s:.3f}", f"{total / list_s:,.0f}")
    table.add_row("scan: os.scandir names", str(total), f"{scan_s:.3f}", f"{total / scan_s:,.0f}")
    table.add_row("gc: mark + sweep, grace 0", str(total), f"{gc_s:.3f}", f"{total / gc_s:,.0f}")
    console.print(table)
    console.print(
        f"gc report: examined {report.examined}, marked {report.marked}, removed "
        f"{report.removed}, freed {report.freed_bytes / MIB:.1f} MiB (expected "
        f"{freed_mib_expected:.1f}), kept young {report.kept_young}, {report.seconds:.3f} s "
        f"in the worker thread"
    )
    console.print(
        "check: exactly the reachable half remains, freed bytes exact: "
        + ("[green]yes[/green]" if ok else "[red]NO[/red]")
    )
    ratio = gc_s / list_s
    print(
        f"blocks={total} gc_s={gc_s:.3f} list_s={list_s:.3f} ratio={ratio:.2f} "
        f"freed_mib={report.freed_bytes / MIB:.1f}"
    )
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=100_000, help="blocks in the store")
    parser.add_argument("--dir", help="work directory (default: bench/out)")
    args = parser.parse_args()
    if args.blocks < 4:
        parser.error("--blocks must be at least 4")
    base = Path(args.dir) if args.dir else Path(__file__).resolve().parent / "out"
    base.mkdir(parents=True, exist_ok=True)
    sys.exit(trio.run(run, args.blocks, base))


if __name__ == "__main__":
    main()
