"""Fuzz every parser fed by the network or by users (the targets of
``tests/harness/fuzz_targets.py``).

Each target runs in its own child process, so a crash, a hang or a memory blow-up in one
neither stops nor skews the others. The child uses **atheris** (libFuzzer's coverage-guided
mutation over instrumented Python) when it is importable, otherwise a random-mutation loop over
the target's seeds (bit flips, interesting bytes, inserted/deleted/duplicated ranges, splices
with other corpus entries; inputs that parse join the corpus). Both engines start from the
seeds the real encoders made, so they get past the first byte.

An input is a **crash** when the target raises anything but its accepted error types (see
``tests/harness/fuzz_targets.py``), a **hang** when it runs longer than ``--timeout`` seconds. The
child does not stop at a crash: it saves the first input of each distinct crash (exception
type + innermost project frame) under the crash directory and carries on. A hang kills a
libFuzzer child (its ``-timeout``); the parent records it, takes the input out of the corpus
and starts a new child for the rest of the budget (at most five per target). The mutation
loop stops a hanging input with SIGALRM and carries on; a watchdog in the parent kills any
child whose counters stop moving (a hang inside C code).

The table gives, per target: inputs tried, inputs/s (over the child's whole life, start-up
and instrumentation included), crashes (inputs), hangs, the slowest input in ms. The last line
is ``targets=... inputs=... crashes=... hangs=... engine=... jobs=... wall_s=...``.

    .venv/bin/python -m bench.fuzz --minutes 10            # split across all targets
    .venv/bin/python -m bench.fuzz --inputs 100000 --jobs 2  # per target, two at a time
    .venv/bin/python -m bench.fuzz --inputs 5000 --target car --target inbox
    .venv/bin/python -m bench.fuzz --replay car /tmp/artdag-fuzz-.../car-crash-1a2b.bin

Corpora and crashes go to ``--out`` (default: a new ``artdag-fuzz-*`` directory in the system
temp directory, never the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ["dag", "provenance", "p2p", "renderer", "activitypub_bridge", "webui", "daemon"]
# Third-party parsers the targets lean on: instrumented too, so coverage guides through them.
LIBRARY_PACKAGES = ["dag_cbor", "multiformats", "http_sf", "http_message_signatures", "tomllib"]
STATS_EVERY_S = 0.5


def _import_targets() -> Any:
    import tests.harness.fuzz_targets as ft

    return ft


# ---------------------------------------------------------------------------------------------
# The child: runs one target, writes its counters to a JSON file as it goes.
# ---------------------------------------------------------------------------------------------


@dataclass
class Counters:
    """What a child reports; written atomically to ``path`` every ``STATS_EVERY_S``."""

    path: Path
    crash_dir: Path
    target: str
    inputs: int = 0
    ok: int = 0
    rejected: int = 0
    crashes: int = 0
    hangs: int = 0
    slowest_ms: float = 0.0
    signatures: dict[str, str] = field(default_factory=dict)  # signature -> saved input
    _written: float = 0.0

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < STATS_EVERY_S:
            return
        self._written = now
        data = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        data["path"], data["crash_dir"] = str(self.path), str(self.crash_dir)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)

    def crash(self, data: bytes, exc: BaseException) -> None:
        self.crashes += 1
        self.save(data, exc)

    def hang(self, data: bytes, exc: BaseException) -> None:
        self.hangs += 1
        self.inputs += 1
        self.save(data, exc)

    def save(self, data: bytes, exc: BaseException) -> None:
        kind = "hang" if isinstance(exc, Hang) else "crash"
        sig = _signature(exc)
        if sig not in self.signatures:
            name = f"{self.target}-{kind}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
            saved = self.crash_dir / name
            saved.write_bytes(data)
            saved.with_suffix(".txt").write_text(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            )
            self.signatures[sig] = str(saved)
        self.write(force=True)


def _signature(exc: BaseException) -> str:
    """Exception type plus the innermost frame inside the repository: one line per bug."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if str(ROOT) in f.filename and "/.venv/" not in f.filename]
    where = mine[-1] if mine else (frames[-1] if frames else None)
    place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
    return f"{type(exc).__name__} at {place}"


def _one(target: Any, counters: Counters, data: bytes) -> None:
    start = time.perf_counter()
    try:
        target.run(data)
        counters.ok += 1
    except target.accepts:
        counters.rejected += 1
    except Exception as exc:  # a crash: anything the target does not document
        counters.crash(data, exc)
    elapsed = (time.perf_counter() - start) * 1000
    counters.inputs += 1
    if elapsed > counters.slowest_ms:
        counters.slowest_ms = elapsed
    counters.write()


def _write_corpus(corpus: Path, seeds: list[bytes]) -> None:
    """The seeds as libFuzzer's corpus (files named by SHA-1, as libFuzzer names its own),
    except inputs that hung or killed an earlier child (listed in ``<corpus>.dropped``)."""
    corpus.mkdir(parents=True, exist_ok=True)
    dropped = _dropped(corpus)
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()
        if name not in dropped:
            (corpus / name).write_bytes(seed)


def _dropped(corpus: Path) -> set[str]:
    listing = corpus.with_suffix(".dropped")
    return set(listing.read_text().split()) if listing.exists() else set()


def _drop(corpus: Path, log_text: str) -> None:
    """Take the input libFuzzer saved as an artifact out of the corpus, so that the next
    child does not hang or die on it again while loading the corpus."""
    for match in re.finditer(r"Test unit written to (\S+)", log_text):
        name = Path(match.group(1)).name.rsplit("-", 1)[-1]  # ...-timeout-<sha1>
        (corpus / name).unlink(missing_ok=True)
        with open(corpus.with_suffix(".dropped"), "a") as listing:
            listing.write(name + "\n")


def child_atheris(args: argparse.Namespace) -> None:
    import atheris

    with atheris.instrument_imports(include=PROJECT_PACKAGES + LIBRARY_PACKAGES):
        ft = _import_targets()
        import daemon.config
        import daemon.core.pinning_api.requests  # noqa: F401
        import p2p.bitswap.framing  # noqa: F401
        import renderer.market  # noqa: F401
        import webui.gateway_ranges  # noqa: F401
        from activitypub_bridge import http_signatures, inbox  # noqa: F401
    target = ft.TARGETS[args.child]
    counters = _counters(args)
    corpus = Path(args.out) / "corpus" / target.name
    _write_corpus(corpus, target.seeds())
    budget = args.inputs - counters.inputs if args.inputs else 0

    def test_one(data: bytes) -> None:
        _one(target, counters, data)
        if budget and counters.inputs >= args.inputs:
            counters.write(force=True)

    flags = [
        sys.argv[0],
        str(corpus),
        f"-timeout={max(1, int(args.timeout))}",
        f"-artifact_prefix={Path(args.out) / 'crashes' / target.name}-",
        "-rss_limit_mb=2048",
        "-max_len=16384",  # deep nesting and long numbers fit; bigger is slower
        f"-seed={args.seed}",
        "-print_final_stats=1",
        f"-runs={budget}" if budget else f"-max_total_time={max(1, int(args.seconds))}",
    ]
    atheris.Setup(flags, test_one)
    atheris.Fuzz()


class Hang(BaseException):
    """Raised by the SIGALRM handler: the input ran past ``--timeout`` (a BaseException, so
    the target's own ``except Exception`` cannot swallow it)."""


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4, 8))):
        op = rng.randrange(9)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:  # flip a bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # an interesting byte
            out[rng.randrange(len(out))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22))
        elif op == 2:  # insert random bytes
            out[pos:pos] = rng.randbytes(rng.randrange(1, 9))
        elif op == 3 and out:  # delete a range
            del out[pos : pos + rng.randrange(1, 17)]
        elif op == 4 and out:  # duplicate a range
            start = rng.randrange(len(out))
            piece = out[start : start + rng.randrange(1, 33)]
            out[pos:pos] = piece * rng.randrange(1, 4)
        elif op == 5 and corpus:  # splice with another entry
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            out = out[:pos] + other[cut:]
        elif op == 6:  # a token of the text formats
            token = rng.choice(TOKENS)
            out[pos:pos] = token
        elif op == 7 and out:  # a random byte
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 8 and len(out) > 1:  # truncate
            del out[rng.randrange(len(out)) :]
    return bytes(out[:16384])


TOKENS = [
    b"\x00",
    b"\xff",
    b"\x80",
    b"-",
    b"=",
    b",",
    b";",
    b":",
    b"\n",
    b'"',
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b"/",
    b"%",
    b"\\",
    b"0",
    b"-1",
    b"4294967295",
    b"18446744073709551616",
    b"1e308",
    b"null",
    b"true",
    b"NaN",
    b"bytes=",
    b"W/",
    b"*",
    b"\xc3\xa9",
    b"\xf0\x9f\x8e\xa8",
]


def child_mutate(args: argparse.Namespace) -> None:
    ft = _import_targets()
    target = ft.TARGETS[args.child]
    counters = _counters(args)
    rng = random.Random(f"{args.seed}:{target.name}:{counters.inputs}")
    corpus = [s for s in target.seeds()] or [b""]
    deadline = None if args.inputs else time.monotonic() + args.seconds

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"input ran longer than {args.timeout} s")

    signal.signal(signal.SIGALRM, alarm)

    def guarded(data: bytes) -> None:
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            _one(target, counters, data)
        except Hang as exc:
            counters.hang(data, exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    for seed in list(corpus):  # the seeds themselves first
        guarded(seed)
    while (counters.inputs < args.inputs) if args.inputs else (time.monotonic() < deadline):
        data = _mutate(rng, rng.choice(corpus), corpus)
        before = counters.ok
        guarded(data)
        if counters.ok > before and len(corpus) < 2000 and rng.random() < 0.2:
            corpus.append(data)
    counters.write(force=True)


def _counters(args: argparse.Namespace) -> Counters:
    path = Path(args.stats)
    counters = Counters(path, Path(args.out) / "crashes", args.child)
    counters.crash_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():  # a restart after a hang: carry the counts on
        saved = json.loads(path.read_text())
        for key in ("inputs", "ok", "rejected", "crashes", "hangs", "slowest_ms", "signatures"):
            setattr(counters, key, saved[key])
    return counters


# ---------------------------------------------------------------------------------------------
# The parent: one child per target, restarted after a hang, then the table.
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    inputs: int = 0
    seconds: float = 0.0
    crashes: int = 0
    hangs: int = 0
    slowest_ms: float = 0.0
    saved: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    lost: int = 0


def _watch(cmd: list[str], out: Any, stats: Path, timeout: float) -> int | None:
    """Run a child; kill it (and answer None) when its counters stop moving for long after
    its own per-input timeout should have fired (a hang inside C code, say)."""
    quiet_limit = max(60.0, 6 * timeout)
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    last_change, last_seen = time.monotonic(), -1.0
    while proc.poll() is None:
        time.sleep(1)
        seen = stats.stat().st_mtime if stats.exists() else -1.0
        if seen != last_seen:
            last_change, last_seen = time.monotonic(), seen
        elif time.monotonic() - last_change > quiet_limit:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def run_target(name: str, args: argparse.Namespace, engine: str, seconds: float) -> Row:
    row = Row(name)
    stats = Path(args.out) / "stats" / f"{name}.json"
    stats.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for _attempt in range(5):
        left = seconds - (time.monotonic() - started)
        if not args.inputs and left < 1:
            break
        cmd = [
            sys.executable, "-m", "bench.fuzz", "--child", name, "--engine", engine,
            "--out", args.out, "--stats", str(stats), "--timeout", str(args.timeout),
            "--seed", str(args.seed), "--inputs", str(args.inputs or 0),
            "--seconds", str(max(1, int(left))) if not args.inputs else "0",
        ]  # fmt: skip
        log = Path(args.out) / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            code = _watch(cmd, out, stats, args.timeout)
        counted = json.loads(stats.read_text()) if stats.exists() else {}
        done = counted.get("inputs", 0)
        if code == 0 or (args.inputs and done >= args.inputs):
            break
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        _drop(Path(args.out) / "corpus" / name, text)
        row.lost += 1  # the input that hung or killed the child is not in its counters
        if code is None or "libFuzzer: timeout" in text:
            row.hangs += 1
            row.notes.append(f"hang: see {log}")
        elif "libFuzzer: out-of-memory" in text:
            row.crashes += 1
            row.notes.append(f"out of memory: see {log}")
        else:
            row.notes.append(f"child exited {code}: see {log}")
            row.crashes += 1
    counted = json.loads(stats.read_text()) if stats.exists() else {}
    row.seconds = time.monotonic() - started
    row.inputs = counted.get("inputs", 0) + row.lost
    row.crashes += counted.get("crashes", 0)
    row.hangs += counted.get("hangs", 0)
    row.slowest_ms = counted.get("slowest_ms", 0.0)
    row.saved = counted.get("signatures", {})
    return row


def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "mutate"
    return "atheris"


def replay(name: str, path: str) -> int:
    ft = _import_targets()
    target = ft.TARGETS[name]
    data = Path(path).read_bytes()
    start = time.perf_counter()
    try:
        target.run(data)
        print(
            f"{name}: accepted ({len(data)} bytes, {1000 * (time.perf_counter() - start):.1f} ms)"
        )
    except target.accepts as exc:
        print(f"{name}: rejected as expected: {type(exc).__name__}: {exc}")
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="total time, split evenly across targets")
    parser.add_argument("--inputs", type=int, help="inputs per target (instead of --minutes)")
    parser.add_argument("--target", action="append", help="a target name (repeatable)")
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before an input hangs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time")
    parser.add_argument("--out", help="directory for corpora, crashes and logs")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "FILE"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        sys.exit(replay(*args.replay))
    if args.child:
        (child_atheris if args.engine == "atheris" else child_mutate)(args)
        return
    ft = _import_targets()
    if args.list:
        for t in ft.TARGETS.values():
            print(f"{t.name:18} {t.owner}")
        return
    names = args.target or list(ft.TARGETS)
    unknown = [n for n in names if n not in ft.TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; --list shows them")
    if not args.inputs and not args.minutes:
        args.minutes = 1.0
    args.out = args.out or tempfile.mkdtemp(prefix="artdag-fuzz-")
    engine = _engine(args.engine)
    per_target = 0.0 if args.inputs else args.minutes * 60 / len(names)
    budget = f"{args.inputs} inputs" if args.inputs else f"{per_target:.0f} s"
    print(f"fuzzing {len(names)} targets with {engine}, {budget} each; output in {args.out}")
    rows: dict[str, Row] = {}

    def one(name: str) -> None:
        row = run_target(name, args, engine, per_target)
        rows[name] = row
        print(
            f"  {name}: {row.inputs} inputs in {row.seconds:.0f} s, {row.crashes} crashes,"
            f" {row.hangs} hangs",
            flush=True,
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, names))
    report([rows[n] for n in names], args, engine, time.monotonic() - started)


def report(rows: list[Row], args: argparse.Namespace, engine: str, wall: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fuzz ({engine})")
    for col in ("target", "inputs", "inputs/s", "crashes", "hangs", "slowest ms"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for r in rows:
        rate = r.inputs / r.seconds if r.seconds else 0.0
        table.add_row(
            r.name, f"{r.inputs:,}", f"{rate:,.0f}", str(r.crashes), str(r.hangs),
            f"{r.slowest_ms:.1f}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    for r in rows:  # plain print: a reproduce line must not be wrapped
        for sig, saved in r.saved.items():
            print(f"{r.name}: {sig}")
            print(f"  reproduce: .venv/bin/python -m bench.fuzz --replay {r.name} {saved}")
        for note in r.notes:
            print(f"{r.name}: {note}")
    total = sum(r.inputs for r in rows)
    busy = sum(r.seconds for r in rows)
    print(
        f"targets={len(rows)} inputs={total} crashes={sum(r.crashes for r in rows)}"
        f" hangs={sum(r.hangs for r in rows)} engine={engine} jobs={args.jobs}"
        f" wall_s={wall:.0f} inputs_per_s={total / busy if busy else 0:.0f} out={args.out}"
    )


if __name__ == "__main__":
    main()
