"""Benchmark: a 4-effect recipe rendered through artdag against ONE hand-written ffmpeg command.

The recipe is ``examples/glitch-clip.yaml`` (resize -> glitch -> colour -> fade) on a generated
640x360, 25 fps H.264 + AAC clip (``--seconds``, default 24 s;
tests/harness/media.py, lavfi sources).
Both sides use the same ffmpeg build (imageio-ffmpeg), the same determinism flags (one thread,
exact swscale, pinned CPU flags, bitexact output) and deliver H.264 + AAC in MP4.

- artdag: ``RenderService.render`` with a fresh store and step cache each run, so every step
  really renders; the clip is in the store beforehand. Timed: loading the recipe, planning,
  copying the input out of the store, probing, the sandboxed ffmpeg run (network namespace,
  rlimits), the content key of the output (a second decode), importing the output into the
  store, signing receipts and provenance. Linear chains are fused into one ffmpeg graph
  (``--fuse``, the default here); ``--no-fuse`` renders every step to an FFV1 intermediate.
- ffmpeg: the same filters written by hand as one ``-filter_complex`` command, run directly.

Each side is the best of ``--runs`` (3), alternated. The two outputs' content keys are
compared (equal means the same pictures and sound). Target: ratio <= 1.10. Last line:
``artdag_s=... ffmpeg_s=... ratio=... fps=...``.

    .venv/bin/python -m bench.render [--seconds 24] [--runs 3] [--no-fuse]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import trio

import dag
from daemon.core.render.service import RenderService
from provenance import Identity
from renderer import Limits, content_key, ffmpeg_exe
from tests.harness.media import make_video

ROOT = Path(__file__).resolve().parents[1]

RECIPE = ROOT / "examples" / "glitch-clip.yaml"
PARAMS = {"small.width": 480, "small.height": 270}


def hand_written_command(source: Path, target: Path, seconds: float) -> list[str]:
    """The recipe's graph as a person would type it (values from glitch-clip.yaml)."""
    out_start = seconds - 1.0
    # yuv420p pinned around the RGB filter (rgbashift), as artdag pins it between steps
    video = (
        "[0:v]scale=480:270,setsar=1,format=yuv420p,"
        "noise=all_seed=1:allf=t:alls=40,rgbashift=bh=-8:rh=8,lagfun=decay=0.6,format=yuv420p,"
        "eq=brightness=0.0:contrast=1.0:saturation=1.4,hue=h=40.0,"
        f"fade=d=0.5:st=0:t=in,fade=d=1.0:st={out_start}:t=out,format=yuv420p[v]"
    )
    audio = (
        f"[0:a]aformat=sample_fmts=fltp,afade=d=0.5:st=0:t=in,afade=d=1.0:st={out_start}:t=out[a]"
    )
    graph = f"sws_flags=bicubic+accurate_rnd+bitexact;{video};{audio}"
    return [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-xerror",
        "-cpuflags", "mmx+mmxext+sse+sse2", "-filter_complex_threads", "1",
        "-filter_threads", "1", "-threads", "1", "-i", str(source),
        "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-b:a", "128k",
        "-movflags", "+faststart", "-f", "mp4", "-threads", "1", "-fflags", "+bitexact",
        "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
        "-map_chapters", "-1", "-y", str(target),
    ]  # fmt: skip


async def artdag_once(work: Path, source: Path, fuse: bool) -> tuple[float, int, str]:
    store = dag.FlatFsBlockstore(work / "store")
    service = RenderService(store, Identity.generate(), work / "index.db", Limits(), workroot=work)
    try:
        clip = (await dag.import_file(store, source)).cid
        await service.add_recipe_file(RECIPE)  # so only the render is timed
        start = time.perf_counter()
        outcome = await service.render(str(RECIPE), {"clip": clip}, PARAMS, fuse=fuse)
        elapsed = time.perf_counter() - start
        return elapsed, outcome.result.frames, outcome.content_key
    finally:
        service.close()
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fuse", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        root = Path(tmp)
        source = make_video(root / "clip.mp4", seconds=args.seconds, size="640x360", fps=25,
                            container="mp4")  # fmt: skip
        print(f"input: {args.seconds:g} s, 640x360, 25 fps, H.264 + AAC ({source.stat().st_size} "
              f"bytes); recipe {RECIPE.name} with {PARAMS}; fuse={args.fuse}")  # fmt: skip
        artdag_times: list[float] = []
        ffmpeg_times: list[float] = []
        frames, artdag_key, ffmpeg_key = 0, "", ""
        for run in range(args.runs):
            work = root / f"artdag-{run}"
            work.mkdir()
            seconds, frames, artdag_key = trio.run(artdag_once, work, source, args.fuse)
            artdag_times.append(seconds)
            target = root / f"hand-{run}.mp4"
            start = time.perf_counter()
            subprocess.run(
                hand_written_command(source, target, args.seconds), check=True,
                capture_output=True,
            )  # fmt: skip
            ffmpeg_times.append(time.perf_counter() - start)
            print(f"run {run + 1}: artdag {seconds:.2f} s, ffmpeg {ffmpeg_times[-1]:.2f} s")
        ffmpeg_key = trio.run(content_key, root / "hand-0.mp4", Limits())
    artdag_s, ffmpeg_s = min(artdag_times), min(ffmpeg_times)
    same = "same" if artdag_key == ffmpeg_key else "DIFFERENT"
    print(f"content keys: artdag {artdag_key[:23]}…, ffmpeg {ffmpeg_key[:23]}… ({same})")
    print(f"best of {args.runs}: artdag {artdag_s:.2f} s, ffmpeg {ffmpeg_s:.2f} s, "
          f"{frames} frames")  # fmt: skip
    print(
        f"artdag_s={artdag_s:.3f} ffmpeg_s={ffmpeg_s:.3f} ratio={artdag_s / ffmpeg_s:.3f} "
        f"fps={frames / artdag_s:.1f}"
    )


if __name__ == "__main__":
    main()
