"""The sandbox every ffmpeg process of the renderer runs in, and ``run_ffmpeg`` on top of it.

Threat model: a render job (graph, options, media) is written by a stranger; ffmpeg is a large
C program with a long history of parser bugs. The guardrails, each answering an item of
docs/decisions.md "ffmpeg and rendering":

- **No network.** The process starts in a fresh network namespace (``unshare -n``; as non-root
  ``unshare -rn``), which holds only a downed loopback: ``zmq``, ``tcp://``, ``http://`` and
  DNS all fail even if a guard above were bypassed. Detected once per process; when no
  namespace can be made and ``Limits.require_isolation`` is set, ``SandboxUnavailable``.
- **No other file.** Inputs are opened here, read-only, and handed to ffmpeg as inherited file
  descriptors (``-fd N -i fd:``) with ``-protocol_whitelist fd``: ffmpeg has no protocol left
  with which to open a path, so a ".mp4" that is an HLS playlist (which reads other local files
  even under ``-protocol_whitelist file``) cannot reach them. Each input's demuxer is also
  forced (``-f``) to the one probing found and ``-format_whitelist``-ed to it. The working
  directory is a fresh empty temporary directory, the environment is minimal.
- **Bounded resources.** ``prlimit`` sets ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``,
  ``RLIMIT_NOFILE``, ``RLIMIT_FSIZE`` and no core dumps on the exec'd ffmpeg; ffmpeg itself gets
  ``-max_alloc`` and ``-xerror`` (the 8192x8192 bomb then fails at its first frame), and the
  output ``-t``/``-fs`` caps (an endless ``loop``/``apad`` stops). A wall-clock timeout kills
  the whole process group (``RenderTimeout``); so does cancelling the caller's trio scope.
  ``prlimit`` (util-linux, like ``unshare``) rather than a ``preexec_fn``: it runs no Python in
  the forked child (unsafe with threads) and the limits are visible in the argv we record.
  With ``Limits.niceness`` > 0 the process also runs under ``nice -n N`` (a volunteer's
  renders yield the CPU to its owner's work), for the same reasons.
- **Reproducible.** One ffmpeg build, ``-threads``/``-filter_complex_threads`` pinned,
  ``-cpuflags`` pinned, exact swscale flags at the head of the graph (``-sws_flags`` is ignored
  with ``-filter_complex``), bitexact muxing and no metadata/chapters copied.
- **Nothing half-written.** The output goes to a temporary name beside ``output`` and is
  renamed into place only when ffmpeg succeeded; on any failure or cancellation it is removed.

Graph and output options are checked against ``renderer.allowlist`` and inputs re-checked
against ``renderer.limits`` before the process starts.

This module builds and runs the ffmpeg commands; one process in the sandbox (the namespace, the
rlimits, the timeout, the output bounds) is :mod:`renderer.sandbox_process`, whose public names
are re-exported here.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import trio

from dag import first_error
from renderer.allowlist import (
    check_filter_graph,
    check_output_args,
    muxer_for_suffix,
    output_duration_arg,
)
from renderer.errors import (
    GraphRefused,
    InputRefused,
)
from renderer.ffmpeg_build import ffmpeg_exe
from renderer.limits import Limits, check_media
from renderer.media_info import MediaInfo
from renderer.sandbox_process import SandboxResult, failure, isolation_prefix, run_sandboxed

__all__ = [
    "SWS_FLAGS",
    "FfmpegInput",
    "RunReport",
    "SandboxResult",
    "bitexact_output_args",
    "decode_audio_pcm",
    "failure",
    "global_args",
    "input_args",
    "isolation_prefix",
    "open_inputs",
    "run_ffmpeg",
    "run_sandboxed",
]

SWS_FLAGS = "bicubic+accurate_rnd+bitexact"


@dataclass(frozen=True)
class FfmpegInput:
    """A probed media input: ffmpeg reads it with its format forced to ``info.demuxer``."""

    path: Path
    info: MediaInfo


@dataclass(frozen=True)
class RunReport:
    """What a finished ffmpeg run did."""

    seconds: float
    frames: int
    argv: tuple[str, ...]
    isolated: bool
    stderr_tail: str
    # "SHA256=<hex>" of the decoded content of output stream ``hash_stream`` (see run_ffmpeg)
    stream_hash: str | None = None


# ---- inputs ------------------------------------------------------------------------------


def open_inputs(stack: ExitStack, paths: Sequence[Path]) -> list[int]:
    """Open each path read-only (regular files only) and register the fds for closing."""
    fds: list[int] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise InputRefused(f"{path.name}: cannot open: {exc.strerror}") from None
        stack.callback(os.close, fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputRefused(f"{path.name}: not a regular file")
        os.set_blocking(fd, True)
        fds.append(fd)
    return fds


def input_args(
    limits: Limits, fd: int, demuxer: str | None, *, threads: int | None = None
) -> list[str]:
    """Options for one input read from inherited descriptor ``fd``: no protocol but ``fd``,
    demuxer forced (or, while probing, restricted to ``limits.containers``). ``threads``
    overrides the decoder thread count (default: the pinned ``limits.threads``)."""
    count = limits.threads if threads is None else threads
    args = ["-threads", str(count), "-protocol_whitelist", "fd"]
    args += ["-format_whitelist", demuxer or ",".join(sorted(limits.containers))]
    if demuxer is not None:
        args += ["-f", demuxer]
    return [*args, "-fd", str(fd), "-i", "fd:"]


def global_args(limits: Limits) -> list[str]:
    """The ffmpeg binary and the global options every sandboxed run starts with."""
    return [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-xerror",
        "-max_alloc", str(limits.max_alloc), "-cpuflags", limits.cpuflags,
        "-filter_complex_threads", str(limits.threads), "-filter_threads", str(limits.threads),
    ]  # fmt: skip


def bitexact_output_args(limits: Limits) -> list[str]:
    """Output options for reproducible files: pinned threads, bitexact muxing, no metadata."""
    return [
        "-threads", str(limits.threads), "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-flags:a", "+bitexact", "-map_metadata", "-1", "-map_chapters", "-1",
    ]  # fmt: skip


def _open_checked(stack: ExitStack, inputs: Sequence[FfmpegInput], limits: Limits) -> list[int]:
    """Re-check each probed input against ``limits``, open it, and make sure the file opened
    is still the size that was probed."""
    for inp in inputs:
        check_media(inp.info, limits)
    fds = open_inputs(stack, [inp.path for inp in inputs])
    for inp, fd in zip(inputs, fds, strict=True):
        if os.fstat(fd).st_size != inp.info.size:
            raise InputRefused(f"{inp.path.name}: changed since it was probed")
    return fds


# ---- run_ffmpeg ----------------------------------------------------------------------------


async def run_ffmpeg(
    *,
    inputs: Sequence[FfmpegInput],
    filter_graph: str | None,
    output_args: Sequence[str],
    output: Path,
    limits: Limits,
    progress: Callable[[int], None] | None = None,
    hash_stream: int | None = None,
) -> RunReport:
    """Run one checked ffmpeg command in the sandbox and write ``output`` atomically.

    ``inputs`` are the probed media in input order (``[0:v]``, ``[1:a]`` ... in the graph);
    ``output_args`` are checked output options (``-map``, ``-c:v``, ``-f`` ...), without the
    output path; when they hold no ``-f``, the muxer follows ``output``'s suffix (``.mkv``,
    ``.mp4``, ``.webm``, ``.mov``, ``.wav``, ``.flac``). ``progress`` gets the frame count as
    ffmpeg reports it. With ``-f null``/``streamhash`` nothing may be written to ``output``.

    ``hash_stream=N`` also hashes the *decoded* content of output stream N while it is being
    encoded: ffmpeg's loopback decoder (``-dec 0:N``) decodes the encoded packets on the
    spare core into a pipe that this process hashes (the bytes ffmpeg's ``streamhash`` muxer
    would hash), so the content key of a lossy output costs no second pass over the file
    (``RunReport.stream_hash``). Used for video,
    whose decoding is the expensive part; for sound the packets differ from the file's decoded
    content (encoder priming samples that the container trims), so sound is hashed from the
    file.
    """
    if filter_graph is not None:
        check_filter_graph(filter_graph)
    check_output_args(output_args)
    muxer_args: list[str] = []
    if "-f" not in output_args:
        muxer = muxer_for_suffix(output.suffix)
        if muxer is None:
            raise GraphRefused(f"output suffix {output.suffix!r} has no allowed muxer; pass -f")
        muxer_args = ["-f", muxer]
    asked = output_duration_arg(output_args)
    duration = min(asked, limits.max_output_seconds) if asked else limits.max_output_seconds
    output = Path(output)
    tmp = output.with_name(f".{output.stem}.{secrets.token_hex(6)}.partial{output.suffix}")
    frames = _FrameCount(progress)
    with ExitStack() as stack:
        fds = _open_checked(stack, inputs, limits)
        argv = global_args(limits)
        for inp, fd in zip(inputs, fds, strict=True):
            argv += input_args(limits, fd, inp.info.demuxer)
        if filter_graph is not None:
            argv += ["-filter_complex", f"sws_flags={SWS_FLAGS};{filter_graph}"]
        argv += [*output_args, *muxer_args, *bitexact_output_args(limits)]
        argv += ["-t", f"{duration:g}", "-fs", str(limits.max_output_bytes)]
        argv += ["-progress", "pipe:1", "-stats_period", "0.5", "-y", str(tmp)]
        stream_hash: str | None = None
        try:
            if hash_stream is None:
                result = await run_sandboxed(
                    argv, limits, pass_fds=fds, on_stdout_line=frames.on_line, keep_stdout=False
                )
            else:
                result, digest = await _run_hashing(argv, limits, fds, frames.on_line, hash_stream)
            if result.returncode != 0:
                raise failure(result, limits)
            if hash_stream is not None:
                stream_hash = f"SHA256={digest}"
            if tmp.exists():
                tmp.replace(output)
        finally:
            tmp.unlink(missing_ok=True)
    return RunReport(
        seconds=result.seconds,
        frames=frames.frames,
        argv=result.argv,
        isolated=result.isolated,
        stderr_tail=result.stderr_tail,
        stream_hash=stream_hash,
    )


class _FrameCount:
    """Follows ffmpeg's ``-progress`` lines: the last ``frame=`` count, handed to ``progress``."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.frames = 0
        self._progress = progress

    def on_line(self, line: bytes) -> None:
        if line.startswith(b"frame="):
            try:
                self.frames = int(line[6:].strip() or b"0")
            except ValueError:
                return
            if self._progress is not None:
                self._progress(self.frames)


async def _run_hashing(
    argv: list[str],
    limits: Limits,
    fds: list[int],
    on_line: Callable[[bytes], None],
    hash_stream: int,
) -> tuple[SandboxResult, str]:
    """Run ``argv`` with a loopback decoder of output stream ``hash_stream`` added, whose
    frames go, as rawvideo, down a pipe that hashlib reads (the bytes ffmpeg's streamhash would
    hash, at SHA-extension speed); the result and the hex SHA-256 of those bytes."""
    digest = hashlib.sha256()
    with ExitStack() as stack:
        read_end, write_end = os.pipe()
        write_open = [True]

        def close_write() -> None:
            """Close our copy of the pipe's write end exactly once (the number may be reused)."""
            if write_open[0]:
                write_open[0] = False
                os.close(write_end)

        stack.callback(os.close, read_end)
        stack.callback(close_write)
        argv = [*argv, "-dec", f"0:{int(hash_stream)}", "-filter_complex", "[dec:0]null[hashed]"]
        argv += ["-map", "[hashed]", "-c", "rawvideo", "-f", "rawvideo", f"pipe:{write_end}"]
        outcome: dict[str, SandboxResult] = {}

        async def run() -> None:
            try:
                outcome["result"] = await run_sandboxed(
                    argv,
                    limits,
                    pass_fds=(*fds, write_end),
                    on_stdout_line=on_line,
                    keep_stdout=False,
                )
            finally:
                close_write()  # our copy: the reader sees EOF once ffmpeg exits

        async def read_hashed() -> None:
            stream = trio.lowlevel.FdStream(os.dup(read_end))
            async with stream:
                while chunk := await stream.receive_some(1 << 20):
                    digest.update(chunk)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_hashed)
                nursery.start_soon(run)
        except BaseExceptionGroup as group:
            error = first_error(group)
            if isinstance(error, trio.Cancelled):
                raise
            raise error from None
    return outcome["result"], digest.hexdigest()


async def decode_audio_pcm(input: FfmpegInput, *, sample_rate: int, limits: Limits) -> bytes:
    """Mono s16le PCM of the first audio stream of ``input`` at ``sample_rate``, decoded in the
    same sandbox (for the beat analyzer). At most ``max_duration_s`` seconds of audio."""
    if input.info.audio is None:
        raise InputRefused(f"{input.path.name}: has no audio stream")
    if not 1000 <= sample_rate <= limits.max_sample_rate:
        raise InputRefused(f"sample_rate {sample_rate} is out of range")
    max_bytes = math.ceil(limits.max_duration_s * sample_rate) * 2 + 65536
    with ExitStack() as stack:
        (fd,) = _open_checked(stack, [input], limits)
        argv = global_args(limits)
        argv += input_args(limits, fd, input.info.demuxer)
        argv += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate)]
        argv += ["-c:a", "pcm_s16le", *bitexact_output_args(limits)]
        argv += ["-t", f"{limits.max_duration_s:g}", "-f", "s16le", "pipe:1"]
        result = await run_sandboxed(argv, limits, pass_fds=(fd,), max_stdout=max_bytes)
    if result.returncode != 0:
        raise failure(result, limits, "audio decode")
    return result.stdout
