"""Probing a media input: what container, streams, sizes and duration it really holds.

imageio-ffmpeg ships no ffprobe, so probing runs the same sandboxed ffmpeg (``renderer.sandbox``)
once per file::

    ffmpeg -protocol_whitelist fd -format_whitelist <allowed containers> -fd N -i fd:
           -map 0:v? -map 0:a? -c copy -f null -progress pipe:1 -

- The input is an inherited read-only descriptor and ``fd`` is the only protocol, so probing a
  hostile file (an HLS playlist named ".mp4", docs/decisions.md) opens nothing else;
  the demuxer is chosen from the file's bytes alone (``fd:`` has no extension to trust) among
  ``Limits.containers`` only — a playlist is then "not media in an allowed container".
- ffmpeg prints the input's header on stderr (``Input #0, <demuxer>, from 'fd:':``,
  ``Duration:``, one ``  Stream #0:N: Video|Audio|...: <codec> ...`` line per stream). Only
  lines in the header section with exactly that indentation are read (metadata values are
  printed indented deeper, so a crafted title cannot forge a stream line), stream indexes
  must run 0..n-1, and anything not understood refuses the input.
- ``-c copy`` demuxes every packet without decoding (the 8192x8192 bomb is measured, not
  unpacked); the last ``out_time_us`` on the progress pipe is the duration actually present,
  which wins over the header's claim.

Then ``renderer.limits.check_media`` refuses anything over a limit, naming it.
"""

from __future__ import annotations

import os
import re
from contextlib import ExitStack
from pathlib import Path

from renderer.errors import InputRefused
from renderer.limits import Limits, check_media
from renderer.media_info import MediaInfo, StreamInfo
from renderer.sandbox import global_args, input_args, open_inputs, run_sandboxed

__all__ = ["MediaInfo", "StreamInfo", "parse_probe_output", "probe"]


_INPUT = re.compile(r"Input #0, ([a-z0-9_,]+), from 'fd:':\Z")
_DURATION = re.compile(r"  Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)")
_STREAM = re.compile(
    r"  Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): "
    r"(\S+?)(?=[ ,]|\Z)(.*)\Z"
)
_SIZE = re.compile(r", (\d{1,6})x(\d{1,6})(?=[ ,]|\Z)")
_FPS = re.compile(r", (\d+(?:\.\d+)?)(k?) fps(?=[ ,]|\Z)")
_RATE = re.compile(r", (\d{1,7}) Hz(?=[ ,]|\Z)")
_LAYOUT = re.compile(r" Hz, ([^,]+?)(?:\([^)]*\))?(?=,|\Z)")
_CHANNELS = {
    "mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4, "quad": 4,
    "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6, "5.1(side)": 6,
    "6.0": 6, "6.0(front)": 6, "hexagonal": 6, "6.1": 7, "6.1(back)": 7, "6.1(front)": 7,
    "7.0": 7, "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8, "7.1(wide-side)": 8, "octagonal": 8,
    "downmix": 2,
}  # fmt: skip
_N_CHANNELS = re.compile(r"(\d{1,3}) channels")


def _channels(rest: str) -> int | None:
    m = re.search(r" Hz, ([^,]+)", rest)
    if not m:
        return None
    layout = m.group(1).strip()
    if layout in _CHANNELS:
        return _CHANNELS[layout]
    n = _N_CHANNELS.fullmatch(layout)
    return int(n.group(1)) if n else None


def _parse_stream(index: int, kind_word: str, codec: str, rest: str) -> StreamInfo:
    if kind_word == "Video":
        size = _SIZE.search(rest)
        fps_m = _FPS.search(rest)
        fps = None
        if fps_m and "(attached pic)" not in rest:
            fps = float(fps_m.group(1)) * (1000 if fps_m.group(2) else 1)
        return StreamInfo(
            index,
            "video",
            codec,
            width=int(size.group(1)) if size else None,
            height=int(size.group(2)) if size else None,
            fps=fps,
        )
    if kind_word == "Audio":
        rate = _RATE.search(rest)
        return StreamInfo(
            index,
            "audio",
            codec,
            sample_rate=int(rate.group(1)) if rate else None,
            channels=_channels(rest),
        )
    return StreamInfo(index, "other", codec)


def parse_probe_output(path: Path, size: int, stderr: str, progress: str) -> MediaInfo:
    """Parse the probe run's stderr header and progress lines (pure; raises InputRefused)."""
    lines = stderr.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("Input #0, ")), None)
    if start is None:
        raise InputRefused(f"{path.name}: not media in an allowed container")
    header = _INPUT.match(lines[start].rstrip("\r"))
    if header is None:
        raise InputRefused(f"{path.name}: probe output not understood")
    container = header.group(1)
    duration: float | None = None
    streams: list[StreamInfo] = []
    for raw in lines[start + 1 :]:
        line = raw.rstrip("\r")
        if not line.startswith("  "):
            break  # end of the input section ("Stream mapping:", "Output #0", log lines)
        if (d := _DURATION.match(line)) is not None:
            if d.group(1) is not None:
                duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))
            continue
        if line.startswith("  Stream #"):
            m = _STREAM.match(line)
            if m is None or int(m.group(1)) != len(streams):
                raise InputRefused(f"{path.name}: probe output not understood: {line.strip()}")
            streams.append(_parse_stream(int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    present = [int(v) for k, v in re.findall(r"^(out_time_us)=(\d+)$", progress, re.MULTILINE) if v]
    if present and present[-1] > 0:
        duration = present[-1] / 1e6
    return MediaInfo(
        path=path,
        size=size,
        container=container,
        demuxer=container.split(",", 1)[0],
        duration=duration,
        streams=tuple(streams),
    )


async def probe(path: Path, limits: Limits) -> MediaInfo:
    """Probe ``path`` in the sandbox and check it against ``limits``.

    Raises InputRefused naming the limit broken, or saying the file is not media in an
    allowed container.
    """
    path = Path(path)
    with ExitStack() as stack:
        (fd,) = open_inputs(stack, [path])
        size = os.fstat(fd).st_size
        if size > limits.max_input_bytes:
            raise InputRefused(
                f"{path.name}: {size} bytes is over max_input_bytes={limits.max_input_bytes}"
            )
        argv = global_args(limits)
        argv += input_args(limits, fd, None)
        argv += ["-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "null"]
        argv += ["-progress", "pipe:1", "-"]
        result = await run_sandboxed(argv, limits, pass_fds=(fd,), fsize=1)
    info = parse_probe_output(
        path, size, result.stderr_head, result.stdout.decode("utf-8", "replace")
    )
    check_media(info, limits)
    if result.returncode != 0:
        # The header parsed but demuxing failed (corrupt or truncated packets under -xerror).
        tail = [line.strip() for line in result.stderr_tail.splitlines() if line.strip()]
        raise InputRefused(f"{path.name}: not readable media: {tail[-1] if tail else ''}")
    return info
