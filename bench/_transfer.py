"""Block transfer speed: bitswap ``fetch_dag`` between two hosts beside one raw stream.

Reusable by ``bench/p2p.py`` (and runnable alone)::

    .venv/bin/python -m bench._transfer [--mib 64] [--runs 3] [--one-process]

Two py-libp2p hosts (Noise + Yamux, ``p2p.host``) on 127.0.0.1. By default the sending host
runs in a child process (``--serve``), as between two daemons; ``--one-process`` (and the
``measure_raw_stream`` / ``measure_bitswap`` functions) put both hosts on this process's one
trio loop. Best of ``--runs``, raw and bitswap alternating, so both see the same machine load.

* raw stream: the sender writes ``size`` random bytes in 1 MiB writes on one stream, the
  receiver reads until it has them all; time from the stream's opening (2p) or first write
  (1p) to the last byte read.
* bitswap: a file of ``size`` random bytes imported with artdag defaults (CIDv1, raw leaves,
  1 MiB chunks) into the sender's FlatFsBlockstore; the receiver, with its own empty
  FlatFsBlockstore, runs ``Bitswap.fetch_dag`` on the root: every block hashed, verified and
  written (not fsynced) before the call returns. Bytes counted are the file's.

The last line printed is ``transfer_mib_s=... raw_mib_s=... transfer_ratio=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from libp2p.custom_types import TProtocol

from dag import FlatFsBlockstore, ImportParams, cid_to_str, import_file, parse_cid
from p2p.bitswap import Bitswap
from p2p.host import connect, host_addrs, running_host

__all__ = [
    "TransferResult",
    "measure_bitswap",
    "measure_bitswap_2p",
    "measure_raw_stream",
    "measure_raw_stream_2p",
    "measure_transfer",
]

MIB = 1 << 20
RAW_PROTOCOL = TProtocol("/artdag/bench/raw/1.0.0")


@dataclass(frozen=True, slots=True)
class TransferResult:
    bytes: int
    seconds: float

    @property
    def mib_s(self) -> float:
        return self.bytes / MIB / self.seconds


async def measure_raw_stream(size: int = 64 * MIB) -> TransferResult:
    """One Yamux stream over Noise between two bare hosts on loopback."""
    chunk = os.urandom(MIB)
    done = trio.Event()
    received = 0
    finished_at = 0.0

    async def handler(stream) -> None:  # type: ignore[no-untyped-def]
        nonlocal received, finished_at
        while received < size:
            data = await stream.read(256 * 1024)
            if not data:
                break
            received += len(data)
        finished_at = time.perf_counter()
        done.set()
        await stream.close()

    async with running_host() as server, running_host() as client:
        server.set_stream_handler(RAW_PROTOCOL, handler)
        peer = await connect(client, host_addrs(server)[0])
        stream = await client.new_stream(peer, [RAW_PROTOCOL])
        start = time.perf_counter()
        sent = 0
        while sent < size:
            piece = chunk[: min(MIB, size - sent)]
            await stream.write(piece)
            sent += len(piece)
        await done.wait()
        await stream.close()
    return TransferResult(received, finished_at - start)


async def measure_bitswap(size: int = 64 * MIB, workdir: Path | None = None) -> TransferResult:
    """``fetch_dag`` of a ``size``-byte file (artdag defaults) from one host to another."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="artdag-bench-") as tmp:
        base = Path(tmp)
        source = base / "file.bin"
        with open(source, "wb") as f:
            left = size
            while left:
                n = min(left, 4 * MIB)
                f.write(os.urandom(n))
                left -= n
        store_a = FlatFsBlockstore(base / "a")
        store_b = FlatFsBlockstore(base / "b")
        try:
            root = (await import_file(store_a, source, ImportParams())).cid
            async with running_host() as host_a, running_host() as host_b:
                serving, fetching = Bitswap(host_a, store_a), Bitswap(host_b, store_b)
                async with trio.open_nursery() as nursery:
                    await nursery.start(serving.run)
                    await nursery.start(fetching.run)
                    await connect(host_b, host_addrs(host_a)[0])
                    start = time.perf_counter()
                    result = await fetching.fetch_dag(root)
                    seconds = time.perf_counter() - start
                    nursery.cancel_scope.cancel()
            if result.fetched != result.blocks:
                raise RuntimeError(f"fetched {result.fetched} of {result.blocks} blocks")
        finally:
            await store_a.aclose()
            await store_b.aclose()
    return TransferResult(size, seconds)


# -- the same two measurements with the sending host in a child process ----------------------


async def _serve(kind: str, size: int) -> None:
    """Child side: print one JSON line (address, root) once ready; serve until stdin closes."""
    with tempfile.TemporaryDirectory(prefix="artdag-bench-") as tmp:
        store = FlatFsBlockstore(Path(tmp) / "store")
        root = ""
        if kind == "bitswap":
            source = Path(tmp) / "file.bin"
            with open(source, "wb") as f:
                for _ in range(0, size, MIB):
                    f.write(os.urandom(MIB))
            root = cid_to_str((await import_file(store, source, ImportParams())).cid)
        async with running_host() as host, trio.open_nursery() as nursery:
            if kind == "bitswap":
                await nursery.start(Bitswap(host, store).run)
            else:
                chunk = os.urandom(MIB)

                async def source_handler(stream) -> None:  # type: ignore[no-untyped-def]
                    sent = 0
                    while sent < size:
                        piece = chunk[: min(MIB, size - sent)]
                        await stream.write(piece)
                        sent += len(piece)
                    await stream.close()

                host.set_stream_handler(RAW_PROTOCOL, source_handler)
            print(json.dumps({"addr": host_addrs(host)[0], "root": root}), flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)  # the parent closes stdin to stop us
            nursery.cancel_scope.cancel()
        await store.aclose()


async def _with_child(kind: str, size: int, body):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench._transfer", "--serve", kind, "--mib", str(size // MIB)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = await trio.to_thread.run_sync(proc.stdout.readline)
        if not line:
            raise RuntimeError(f"bench child ({kind}) exited before it was ready")
        return await body(json.loads(line))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await trio.to_thread.run_sync(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def measure_raw_stream_2p(size: int = 64 * MIB) -> TransferResult:
    """One Noise+Yamux stream from a bare host in a child process to a bare host here."""

    async def body(ready: dict[str, str]) -> TransferResult:
        async with running_host() as host:
            peer = await connect(host, ready["addr"])
            stream = await host.new_stream(peer, [RAW_PROTOCOL])
            start = time.perf_counter()
            got = 0
            while got < size:
                data = await stream.read(256 * 1024)
                if not data:
                    break
                got += len(data)
            return TransferResult(got, time.perf_counter() - start)

    return await _with_child("raw", size, body)


async def measure_bitswap_2p(size: int = 64 * MIB) -> TransferResult:
    """``fetch_dag`` here of a file (artdag defaults) served by bitswap in a child process."""

    async def body(ready: dict[str, str]) -> TransferResult:
        with tempfile.TemporaryDirectory(prefix="artdag-bench-") as tmp:
            store = FlatFsBlockstore(Path(tmp) / "store")
            try:
                async with running_host() as host, trio.open_nursery() as nursery:
                    bitswap = Bitswap(host, store)
                    await nursery.start(bitswap.run)
                    await connect(host, ready["addr"])
                    start = time.perf_counter()
                    result = await bitswap.fetch_dag(parse_cid(ready["root"]))
                    seconds = time.perf_counter() - start
                    nursery.cancel_scope.cancel()
            finally:
                await store.aclose()
        if result.fetched != result.blocks:
            raise RuntimeError(f"fetched {result.fetched} of {result.blocks} blocks")
        return TransferResult(size, seconds)

    return await _with_child("bitswap", size, body)


async def measure_transfer(
    size: int = 64 * MIB, runs: int = 3, *, processes: bool = True
) -> dict[str, float]:
    """Best of ``runs`` for both, alternating; the keys of bench/p2p.py's summary line.

    ``processes=True``: the sending host runs in a child process (as between two daemons);
    False: both hosts share this process and its event loop."""
    raw_fn = measure_raw_stream_2p if processes else measure_raw_stream
    swap_fn = measure_bitswap_2p if processes else measure_bitswap
    raws, swaps = [], []
    for _ in range(runs):
        raws.append(await raw_fn(size))
        swaps.append(await swap_fn(size))
    raw = max(raws, key=lambda r: r.mib_s)
    swap = max(swaps, key=lambda r: r.mib_s)
    return {
        "transfer_mib_s": round(swap.mib_s, 1),
        "raw_mib_s": round(raw.mib_s, 1),
        "transfer_ratio": round(swap.mib_s / raw.mib_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one-process", action="store_true", help="both hosts in this process")
    parser.add_argument("--serve", choices=["raw", "bitswap"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(_serve, args.serve, args.mib * MIB)
        return
    figures = trio.run(
        partial(measure_transfer, processes=not args.one_process), args.mib * MIB, args.runs
    )
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
