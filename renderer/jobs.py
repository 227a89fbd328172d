"""One job = one ffmpeg run: a chain of filter-graph steps turned into graph text and output args.

The graph is built with ffmpeg-python; we take the ``-filter_complex`` text and the ``-map``
arguments from its ``get_args()`` and hand them, with our codec arguments, to the sandbox
(which adds every guardrail and determinism flag itself). ffmpeg-python numbers inputs in its
own order, so the inputs handed to the sandbox are read back from its ``-i`` arguments.

Formats (docs/recipes.md): intermediates are FFV1 + 32-bit float PCM in Matroska (lossless for
the float sound every graph works in; fast; deterministic with pinned threads); the recipe's
output is H.264 (libx264, CRF 20, yuv420p) + AAC in MP4 with ``+faststart``, which every
browser plays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import ffmpeg

from .effect_graphs import BUILDERS, GraphContext, Media, finish_for_delivery
from .errors import RenderError
from .planner import DELIVERY_FORMAT, INTERMEDIATE_FORMAT, Step
from .probe import MediaInfo
from .sandbox import FfmpegInput

__all__ = ["CODEC_ARGS", "JobGraph", "JobInput", "build_job_graph", "media_of"]

CODEC_ARGS: dict[str, tuple[list[str], list[str], list[str]]] = {
    # format -> (video args, audio args, container args)
    INTERMEDIATE_FORMAT: (["-c:v", "ffv1"], ["-c:a", "pcm_f32le"], ["-f", "matroska"]),
    DELIVERY_FORMAT: (
        ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"],
        ["-c:a", "aac", "-b:a", "128k"],
        ["-movflags", "+faststart", "-f", "mp4"],
    ),
}
SUFFIX = {INTERMEDIATE_FORMAT: ".mkv", DELIVERY_FORMAT: ".mp4"}


@dataclass(frozen=True)
class JobInput:
    path: Path
    info: MediaInfo
    duration: float | None = None  # the logical duration, when an earlier step computed it


@dataclass(frozen=True)
class JobGraph:
    inputs: list[FfmpegInput]
    filter_graph: str | None
    output_args: list[str]
    suffix: str
    duration: float | None  # the logical duration of the result
    has_video: bool = False  # then the video is output stream 0


def media_of(stream_node: object, item: JobInput) -> Media:
    """The value of a probed input file in a graph. Sound enters every graph as float planar
    (exact from any integer format), so a chain computes the same samples whether it runs as
    one graph or step by step through float intermediates."""
    video, audio = item.info.video, item.info.audio
    a = None
    if audio is not None:
        a = stream_node["a:0"].filter("aformat", sample_fmts="fltp")  # type: ignore[index]
    return Media(
        stream_node["v:0"] if video is not None else None,  # type: ignore[index]
        a,
        video.width if video is not None else None,
        video.height if video is not None else None,
        item.info.duration if item.duration is None else item.duration,
    )


def split_media(media: Media, n: int) -> list[Media]:
    """``n`` independent copies of a value (a filter output may feed only one filter)."""
    if n == 1:
        return [media]
    vs = [None] * n if media.video is None else media.video.filter_multi_output("split", n)
    a_s = [None] * n if media.audio is None else media.audio.filter_multi_output("asplit", n)
    return [replace(media, video=vs[i], audio=a_s[i]) for i in range(n)]


def step_boundary(media: Media) -> Media:
    """Pin the formats every step hands on: yuv420p pictures and float planar sound.

    A fused chain and the same steps run one by one then convert pixels and samples at the
    same places, so both give the same content (and a cache id names one content either way):
    without this, ffmpeg negotiates formats across a whole graph and a fused ``scale`` could
    convert straight to the RGB format a later filter wants, rounding differently."""
    v = None if media.video is None else media.video.filter("format", "yuv420p")
    a = None if media.audio is None else media.audio.filter("aformat", sample_fmts="fltp")
    return replace(media, video=v, audio=a)


def build_job_graph(chain: Sequence[Step], sources: Sequence[JobInput | list[float]]) -> JobGraph:
    """The ffmpeg run for ``chain`` (first step reads ``sources``; beats are a list of times)."""
    infos: dict[str, JobInput] = {}
    uses: dict[str, int] = {}
    beats: list[float] = []
    for item in sources:
        if isinstance(item, list):
            beats = item
        else:
            infos.setdefault(str(item.path), item)
            uses[str(item.path)] = uses.get(str(item.path), 0) + 1
    copies = {
        key: split_media(media_of(ffmpeg.input(key), infos[key]), n) for key, n in uses.items()
    }
    values = [copies[str(item.path)].pop(0) for item in sources if not isinstance(item, list)]
    first = chain[0]
    media = BUILDERS[first.effect.name](values, dict(first.params), GraphContext(first.id, beats))
    media = step_boundary(media)
    for step in chain[1:]:
        media = BUILDERS[step.effect.name]([media], dict(step.params), GraphContext(step.id))
        media = step_boundary(media)
    fmt = chain[-1].format
    if fmt == DELIVERY_FORMAT:
        media = finish_for_delivery(media)
    streams = [s for s in (media.video, media.audio) if s is not None]
    if not streams:
        raise RenderError(f"step {chain[-1].id!r}: the result has neither video nor audio")
    args = ffmpeg.output(*streams, "OUTPUT").get_args()
    inputs: list[FfmpegInput] = []
    graph: str | None = None
    maps: list[str] = []
    i = 0
    while i < len(args) - 1:
        flag, value = args[i], args[i + 1]
        if flag == "-i":
            job_input = infos[value]
            inputs.append(FfmpegInput(job_input.path, job_input.info))
        elif flag == "-filter_complex":
            graph = value
        elif flag == "-map":
            maps += ["-map", value]
        else:  # pragma: no cover - ffmpeg-python emits nothing else for these graphs
            raise RenderError(f"unexpected ffmpeg-python argument {flag!r}")
        i += 2
    vargs, aargs, cargs = CODEC_ARGS[fmt]
    out = list(maps)
    if media.video is not None:
        out += vargs
    if media.audio is not None:
        out += aargs
    return JobGraph(
        inputs, graph, out + cargs, SUFFIX[fmt], media.duration, media.video is not None
    )
