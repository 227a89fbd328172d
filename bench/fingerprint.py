"""Benchmark: perceptual fingerprints against re-encoded, resized, cropped and brightened copies,
and near-duplicate query latency over 100,000 indexed fingerprints.

1. ``--originals`` (30) distinct 5 s clips from varied lavfi sources (test patterns, fractals
   at different places, Game of Life and cellular automata with different seeds and rules,
   random gradients), 320x180, lossless FFV1. Each gets four copies as H.264 MP4: re-encoded
   at a low bitrate (150 kb/s), resized to half, cropped by 10% on every edge, and brightened
   (``eq=brightness=0.1``). Every file is fingerprinted through the renderer's sandbox
   (``renderer.fingerprinting.fingerprint_file``).
2. Accuracy: per transform, the fraction of copies that ``is_near_duplicate`` their original;
   the false-positive rate over every pair of distinct originals and every (copy, other
   original) pair.
3. Index: the real originals plus synthetic fingerprints up to ``--index-size`` (100,000), of
   the same shape (4-30 s at 2 fps): three quarters random hashes, one quarter decoys made
   from real frames with 32-48 of every hash's 128 bits flipped (near the real ones in hash space,
   but not near-duplicates). ``--queries`` (200) queries: every copy (which must find its
   original first), then synthetic ones; median and p95 latency.

Targets: detection >= 0.95, false_positive <= 0.01, query < 10 ms. Last line:
``detection=... false_positive=... query_ms=...``.

    .venv/bin/python -m bench.fingerprint [--originals 30] [--index-size 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import trio

from provenance.fingerprints import (
    Fingerprint,
    FingerprintIndex,
    distance,
    is_near_duplicate,
)
from renderer import Limits
from renderer.fingerprinting import fingerprint_file
from tests.harness.media import run_ffmpeg_cli

SIZE = "320x180"
SECONDS = 5

# Distinct sources: name -> (lavfi source, seconds to skip at the start)
SOURCES: list[tuple[str, str, float]] = [
    ("testsrc", f"testsrc=size={SIZE}:rate=25", 0),
    ("testsrc2", f"testsrc2=size={SIZE}:rate=25", 0),
    ("smptebars", f"smptebars=size={SIZE}:rate=25", 0),
    ("rgbtestsrc", f"rgbtestsrc=size={SIZE}:rate=25", 0),
    ("colorchart", "colorchart=rate=25:patch_size=48x48", 0),
    ("zoneplate-a", f"zoneplate=size={SIZE}:rate=25:kt2=8:ky2=4", 0),
    ("zoneplate-b", f"zoneplate=size={SIZE}:rate=25:kx2=300:ky2=100:kt=30", 0),
    ("mandelbrot-a", f"mandelbrot=size={SIZE}:rate=25", 0),
    (
        "mandelbrot-b",
        f"mandelbrot=size={SIZE}:rate=25:start_x=-0.75:start_y=0.1:start_scale=0.3",
        0,
    ),
    (
        "mandelbrot-c",
        f"mandelbrot=size={SIZE}:rate=25:start_x=0.28:start_y=0.01:start_scale=0.05",
        0,
    ),
    (
        "mandelbrot-d",
        f"mandelbrot=size={SIZE}:rate=25:start_x=-1.25:start_y=0.02:start_scale=0.1",
        0,
    ),
    ("life-1", f"life=size={SIZE}:rate=25:seed=1:ratio=0.2:mold=10", 0),
    ("life-2", f"life=size={SIZE}:rate=25:seed=2:ratio=0.3:mold=5", 0),
    ("life-3", f"life=size={SIZE}:rate=25:seed=3:ratio=0.1", 0),
    ("life-4", f"life=size={SIZE}:rate=25:seed=4:ratio=0.5:mold=20", 0),
    ("cellauto-30", f"cellauto=size={SIZE}:rate=25:rule=30:seed=1:random_fill_ratio=0.5", 0),
    ("cellauto-110", f"cellauto=size={SIZE}:rate=25:rule=110:seed=2:random_fill_ratio=0.3", 0),
    ("cellauto-90", f"cellauto=size={SIZE}:rate=25:rule=90:seed=3:random_fill_ratio=0.1", 0),
    ("cellauto-18", f"cellauto=size={SIZE}:rate=25:rule=18:pattern=1", 0),
    ("sierpinski-1", f"sierpinski=size={SIZE}:rate=25:seed=1:type=carpet", 0),
    ("sierpinski-2", f"sierpinski=size={SIZE}:rate=25:seed=2:type=triangle", 0),
    ("sierpinski-3", f"sierpinski=size={SIZE}:rate=25:seed=3:type=carpet:jump=7", 0),
    ("gradients-1", f"gradients=size={SIZE}:rate=25:seed=1:n=3:speed=0.05", 0),
    ("gradients-2", f"gradients=size={SIZE}:rate=25:seed=2:n=5:speed=0.05", 0),
    ("gradients-3", f"gradients=size={SIZE}:rate=25:seed=3:n=2:type=radial", 0),
    ("gradients-4", f"gradients=size={SIZE}:rate=25:seed=4:n=4:type=circular", 0),
    ("gradients-5", f"gradients=size={SIZE}:rate=25:seed=5:n=8:type=spiral", 0),
    ("mptestsrc-ring", "mptestsrc=rate=25:test=ring1", 0),
    ("cellauto-150", f"cellauto=size={SIZE}:rate=25:rule=150:seed=5:random_fill_ratio=0.05", 0),
    ("life-1-late", f"life=size={SIZE}:rate=25:seed=1:ratio=0.2:mold=10", 30),
]

TRANSFORMS: dict[str, list[str]] = {
    "reencode": ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "150k"],
    "resize": ["-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-preset", "ultrafast"],
    "crop": ["-vf", "crop=iw*0.8:ih*0.8", "-c:v", "libx264", "-preset", "ultrafast"],
    "brightness": ["-vf", "eq=brightness=0.1", "-c:v", "libx264", "-preset", "ultrafast"],
}


def make_media(folder: Path, count: int) -> tuple[list[Path], dict[str, list[Path]]]:
    originals: list[Path] = []
    copies: dict[str, list[Path]] = {name: [] for name in TRANSFORMS}
    for name, source, skip in SOURCES[:count]:
        original = folder / f"{name}.mkv"
        args = ["-f", "lavfi"]
        if skip:
            args += ["-ss", str(skip)]
        args += ["-i", source, "-t", str(SECONDS), "-pix_fmt", "yuv420p", "-vf", f"scale={SIZE}"]
        args += ["-c:v", "ffv1", "-threads", "1", "-y", str(original)]
        run_ffmpeg_cli(args)
        originals.append(original)
        for tname, targs in TRANSFORMS.items():
            copy = folder / f"{name}.{tname}.mp4"
            run_ffmpeg_cli(
                [
                    "-i",
                    str(original),
                    *targs,
                    "-pix_fmt",
                    "yuv420p",
                    "-threads",
                    "1",
                    "-y",
                    str(copy),
                ]
            )
            copies[tname].append(copy)
    return originals, copies


async def fingerprint_all(paths: list[Path]) -> list[Fingerprint]:
    limits = Limits()
    results: list[Fingerprint | None] = [None] * len(paths)
    limiter = trio.CapacityLimiter(2)

    async def one(i: int) -> None:
        async with limiter:
            results[i] = await fingerprint_file(paths[i], limits)

    async with trio.open_nursery() as nursery:
        for i in range(len(paths)):
            nursery.start_soon(one, i)
    return [fp for fp in results if fp is not None]


def synthetic(rng: random.Random, real: list[Fingerprint], decoy: bool) -> Fingerprint:
    n = rng.randint(8, 60)
    if decoy:
        base = rng.choice(real)
        full: list[int] = []
        crop: list[int] = []
        for i in range(n):
            j = i % len(base.hashes)
            for src, out in ((base.hashes[j], full), (base.crop_hashes[j], crop)):
                flips = 0
                for bit in rng.sample(range(128), rng.randint(32, 48)):
                    flips |= 1 << bit
                out.append(src ^ flips)
        return Fingerprint("video", 2.0, n / 2, tuple(full), tuple(crop))
    full = [rng.getrandbits(128) for _ in range(n)]
    crop = [rng.getrandbits(128) for _ in range(n)]
    return Fingerprint("video", 2.0, n / 2, tuple(full), tuple(crop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=int, default=len(SOURCES))
    parser.add_argument("--index-size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=6)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="artdag-fpbench-") as tmp:
        started = time.monotonic()
        originals, copies = make_media(Path(tmp), opts.originals)
        made = time.monotonic() - started
        started = time.monotonic()
        all_paths = originals + [p for name in TRANSFORMS for p in copies[name]]
        fps = trio.run(fingerprint_all, all_paths)
        took = time.monotonic() - started
    n = len(originals)
    orig_fp = fps[:n]
    copy_fp = {name: fps[n * (k + 1) : n * (k + 2)] for k, name in enumerate(TRANSFORMS)}
    print(
        f"media: {n} originals + {4 * n} copies made in {made:.1f} s, fingerprinted in "
        f"{took:.1f} s ({1000 * took / len(all_paths):.0f} ms a file, 2 at a time)"
    )

    names = [s[0] for s in SOURCES[:n]]
    print(f"\n{'transform':<12} {'detected':>9} {'rate':>6} {'mean dist':>10} {'max dist':>9}")
    detected = total = 0
    for tname, cfps in copy_fp.items():
        dists = [distance(o, c) for o, c in zip(orig_fp, cfps, strict=True)]
        hits = sum(is_near_duplicate(o, c) for o, c in zip(orig_fp, cfps, strict=True))
        detected += hits
        total += n
        print(
            f"{tname:<12} {hits:>5}/{n:<3} {hits / n:>6.3f} {statistics.mean(dists):>10.3f} "
            f"{max(dists):>9.3f}"
        )
        for i, d in enumerate(dists):
            if not is_near_duplicate(orig_fp[i], cfps[i]):
                print(f"    missed: {names[i]} (distance {d:.3f})")

    fp_pairs = fp_hits = 0
    closest = 1.0
    closest_pair = ("", "")
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            candidates = [("original", orig_fp[j])] if j > i else []
            candidates += [(t, copy_fp[t][j]) for t in TRANSFORMS]
            for what, other in candidates:
                fp_pairs += 1
                d = distance(orig_fp[i], other)
                if d < closest:
                    closest, closest_pair = d, (names[i], f"{names[j]} ({what})")
                if is_near_duplicate(orig_fp[i], other):
                    fp_hits += 1
                    print(f"    false positive: {names[i]} ~ {names[j]} ({what}) d={d:.3f}")
    detection = detected / total
    false_positive = fp_hits / fp_pairs
    near = sorted(
        (distance(orig_fp[i], copy_fp[t][j]), names[i], names[j], t)
        for i in range(n)
        for j in range(n)
        for t in TRANSFORMS
        if i != j
    )[:8]
    print("closest distinct:", ", ".join(f"{a}~{b}({t}) {d:.3f}" for d, a, b, t in near))
    print(f"{'all copies':<12} {detected:>5}/{total:<3} {detection:>6.3f}")
    print(
        f"{'distinct':<12} {fp_hits:>5}/{fp_pairs:<5} false positives ({false_positive:.4f}); "
        f"closest distinct pair d={closest:.3f}: {closest_pair[0]} ~ {closest_pair[1]}"
    )

    rng = random.Random(opts.seed)
    started = time.monotonic()
    index = FingerprintIndex()
    for i, fp in enumerate(orig_fp):
        index.add(f"real:{names[i]}", fp)
    fill = opts.index_size - len(index)
    synth_queries: list[Fingerprint] = []
    for k in range(fill):
        fp = synthetic(rng, orig_fp, decoy=(k % 4 == 0))
        index.add(f"synthetic:{k}", fp)
        if len(synth_queries) < opts.queries and k % 97 == 0:
            synth_queries.append(fp)
    built = time.monotonic() - started
    print(f"\nindex: {len(index)} fingerprints built in {built:.1f} s")

    queries: list[tuple[Fingerprint, str | None]] = []
    near_ids = {
        id(c)
        for t in TRANSFORMS
        for o, c in zip(orig_fp, copy_fp[t], strict=True)
        if is_near_duplicate(o, c)
    }
    for t in TRANSFORMS:
        queries += [(c, f"real:{names[i]}") for i, c in enumerate(copy_fp[t])]
    queries = queries[: opts.queries]
    queries += [(fp, None) for fp in synth_queries[: opts.queries - len(queries)]]
    latencies: list[float] = []
    found_first = real = near_found = near_real = 0
    for fp, want in queries:
        t0 = time.perf_counter()
        found = index.query(fp, limit=10)
        latencies.append(1000 * (time.perf_counter() - t0))
        if want is not None:
            first = bool(found) and found[0][0] == want
            real += 1
            found_first += first
            if id(fp) in near_ids:
                near_real += 1
                near_found += first
    latencies.sort()
    latencies = latencies or [0.0]
    median = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(
        f"queries: {len(queries)} ({real} real copies found their original first: "
        f"{found_first}/{real}, of the copies detected pairwise {near_found}/{near_real}); "
        f"latency median {median:.2f} ms, p95 {p95:.2f} ms, "
        f"max {latencies[-1]:.2f} ms"
    )
    print(f"detection={detection:.3f} false_positive={false_positive:.4f} query_ms={median:.2f}")


if __name__ == "__main__":
    main()
