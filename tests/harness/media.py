"""Small, deterministic test media made with ffmpeg's lavfi sources (nothing is downloaded).

Every generator runs the one ffmpeg build the renderer uses (imageio-ffmpeg's static binary),
single-threaded with bitexact flags, so the same call writes the same bytes on every run:

- ``make_video(path, seconds=2, size="320x180", fps=25, with_audio=True, container=...)`` —
  ``testsrc2`` pictures (moving, coloured, so frame hashes differ frame to frame) plus a
  440 Hz ``sine`` tone. ``container="matroska"`` writes FFV1 + FLAC (lossless: exact decoded
  content is known), ``"mp4"`` writes H.264 (libx264) + AAC, ``"webm"`` VP9 + Opus.
- ``make_audio(path, seconds=4, kind="beats"|"tone", bpm=120)`` — a WAV (PCM s16le, mono,
  44.1 kHz by default). ``"beats"`` is a click track: a 20 ms decaying 1 kHz burst on every beat
  and silence between, so onsets are unmistakable; ``"tone"`` a steady 440 Hz sine.
- ``make_big_frames(path, size="8192x8192", frames=2)`` — a tiny FFV1 Matroska of a solid
  colour at a huge frame size: the "decompression bomb" of docs/decisions.md (a few kB on disk,
  hundreds of MB per decoded frame).

These run ffmpeg directly (not through the sandbox): they write trusted test fixtures from
lavfi sources, they read no input file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Literal

import imageio_ffmpeg

__all__ = ["beat_times", "make_audio", "make_big_frames", "make_video", "run_ffmpeg_cli"]

_DETERMINISM = [
    "-threads",
    "1",
    "-fflags",
    "+bitexact",
    "-flags:v",
    "+bitexact",
    "-flags:a",
    "+bitexact",
    "-map_metadata",
    "-1",
]

_VIDEO_CODECS: dict[str, tuple[list[str], list[str]]] = {
    # container -> (video codec args, audio codec args)
    "matroska": (["-c:v", "ffv1", "-pix_fmt", "yuv420p"], ["-c:a", "flac"]),
    "mp4": (
        ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p"],
        ["-c:a", "aac", "-b:a", "64k"],
    ),
    "webm": (
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"],
        ["-c:a", "libopus", "-b:a", "48k"],
    ),
}


def run_ffmpeg_cli(args: list[str]) -> None:
    """Run the imageio-ffmpeg binary with ``args``; raise with stderr's tail on failure."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    done = subprocess.run([*cmd, *args], capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip()[-800:]
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {tail}")


def make_video(
    path: Path | str,
    seconds: float = 2,
    size: str = "320x180",
    fps: int = 25,
    with_audio: bool = True,
    container: Literal["matroska", "mp4", "webm"] = "matroska",
    *,
    colour: str | None = None,
    sample_rate: int = 44100,
) -> Path:
    """Write a small test video and return its path.

    ``colour`` (e.g. ``"red"``) replaces the moving test pattern by a solid colour.
    """
    path = Path(path)
    vcodec, acodec = _VIDEO_CODECS[container]
    if colour is None:
        vsrc = f"testsrc2=size={size}:rate={fps}:duration={seconds}"
    else:
        vsrc = f"color=c={colour}:size={size}:rate={fps}:duration={seconds}"
    args = ["-f", "lavfi", "-i", vsrc]
    if with_audio:
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate={sample_rate}:duration={seconds}",
        ]
    args += ["-map", "0:v"]
    if with_audio:
        args += ["-map", "1:a", *acodec]
    args += [*vcodec, *_DETERMINISM, "-t", str(seconds), "-f", container, "-y", str(path)]
    run_ffmpeg_cli(args)
    return path


def beat_times(seconds: float, bpm: float = 120) -> list[float]:
    """The onset times (s) of the clicks ``make_audio(kind="beats")`` writes."""
    period = 60.0 / bpm
    n = int(seconds / period + 1e-9)
    return [round(i * period, 6) for i in range(n) if i * period < seconds]


def make_audio(
    path: Path | str,
    seconds: float = 4,
    kind: Literal["beats", "tone"] = "beats",
    bpm: float = 120,
    *,
    sample_rate: int = 44100,
    container: Literal["wav", "flac"] = "wav",
) -> Path:
    """Write a mono test audio file (PCM s16le WAV by default) and return its path."""
    path = Path(path)
    if kind == "beats":
        period = 60.0 / bpm
        # A 20 ms decaying 1 kHz burst at the start of every beat period, silence otherwise.
        expr = (
            f"if(lt(mod(t\\,{period})\\,0.02)\\,"
            f"0.9*sin(2*PI*1000*t)*exp(-mod(t\\,{period})*150)\\,0)"
        )
        src = f"aevalsrc={expr}:s={sample_rate}:d={seconds}:c=mono"
    else:
        src = f"sine=frequency=440:sample_rate={sample_rate}:duration={seconds}"
    codec = ["-c:a", "pcm_s16le"] if container == "wav" else ["-c:a", "flac"]
    args = ["-f", "lavfi", "-i", src, "-ac", "1", *codec, *_DETERMINISM]
    args += ["-t", str(seconds), "-f", container, "-y", str(path)]
    run_ffmpeg_cli(args)
    return path


def make_big_frames(path: Path | str, size: str = "8192x8192", frames: int = 2) -> Path:
    """Write a tiny FFV1 Matroska of ``frames`` solid-colour frames at ``size`` (a bomb)."""
    path = Path(path)
    args = ["-f", "lavfi", "-i", f"color=c=blue:size={size}:rate=1", "-frames:v", str(frames)]
    args += ["-c:v", "ffv1", "-pix_fmt", "gray", *_DETERMINISM, "-f", "matroska", "-y", str(path)]
    run_ffmpeg_cli(args)
    return path
