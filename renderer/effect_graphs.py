"""How each ffmpeg-rendered effect becomes filters, built with ffmpeg-python.

A :class:`Media` is one value flowing through a filter graph: its video and audio streams
(ffmpeg-python stream nodes, either may be absent) and what is known of its shape (size,
duration), which some effects need (``fade`` out, ``mux``, ``sequence``). Each builder takes the
input values and the effect's effective parameters and returns a new value; several builders
chained make one graph, which is how the executor fuses a linear chain into one ffmpeg run.

Only filters on the sandbox's allowlist are used; no builder names a file, a URL or a device.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ffmpeg

from .errors import RenderError

__all__ = ["BUILDERS", "Media", "GraphContext", "finish_for_delivery"]

Stream = Any  # an ffmpeg-python stream node


@dataclass(frozen=True)
class Media:
    video: Stream | None
    audio: Stream | None
    width: int | None = None
    height: int | None = None
    duration: float | None = None


@dataclass(frozen=True)
class GraphContext:
    step: str  # the step id, for error messages
    beats: Sequence[float] = ()  # beat times for beat-cut


def _need_video(media: Media, ctx: GraphContext, effect: str) -> Stream:
    if media.video is None:
        raise RenderError(f"step {ctx.step!r}: {effect} needs a video stream, its input has none")
    return media.video


def _resize(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    v = _need_video(ins[0], ctx, "resize").filter("scale", p["width"], p["height"])
    return replace(ins[0], video=v.filter("setsar", 1), width=p["width"], height=p["height"])


def _rotate(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m = ins[0]
    v = _need_video(m, ctx, "rotate")
    turns = p["degrees"] / 90.0
    if turns.is_integer():
        quarter = int(turns) % 4
        if quarter == 0:
            return m
        if quarter == 2:
            return replace(m, video=v.filter("hflip").filter("vflip"))
        v = v.filter("transpose", 1 if quarter == 1 else 2)
        return replace(m, video=v, width=m.height, height=m.width)
    angle = f"{p['degrees']}*PI/180"
    return replace(m, video=v.filter("rotate", angle, fillcolor="black"))


def _crop(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m = ins[0]
    v = _need_video(m, ctx, "crop")
    known = m.width is not None and m.height is not None
    if known and (p["x"] + p["width"] > m.width or p["y"] + p["height"] > m.height):
        raise RenderError(
            f"step {ctx.step!r}: crop {p['width']}x{p['height']}+{p['x']}+{p['y']} does not "
            f"fit in the {m.width}x{m.height} picture"
        )
    v = v.filter("crop", p["width"], p["height"], p["x"], p["y"])
    return replace(m, video=v, width=p["width"], height=p["height"])


def _segment(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m = ins[0]
    start, length = p["start"], p["duration"]
    v = a = None
    if m.video is not None:
        v = m.video.filter("trim", start=start, duration=length).filter("setpts", "PTS-STARTPTS")
    if m.audio is not None:
        a = m.audio.filter("atrim", start=start, duration=length).filter("asetpts", "PTS-STARTPTS")
    duration = length if m.duration is None else max(0.0, min(length, m.duration - start))
    return replace(m, video=v, audio=a, duration=duration)


def _speed(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m, factor = ins[0], p["factor"]
    v = None if m.video is None else m.video.filter("setpts", f"PTS/{factor}")
    a = m.audio
    if a is not None:
        remaining = factor  # atempo takes 0.5..2 per instance: chain as needed
        while remaining > 2.0:
            a, remaining = a.filter("atempo", 2.0), remaining / 2.0
        while remaining < 0.5:
            a, remaining = a.filter("atempo", 0.5), remaining / 0.5
        a = a.filter("atempo", remaining)
    duration = None if m.duration is None else m.duration / factor
    return replace(m, video=v, audio=a, duration=duration)


def _colour(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    v = _need_video(ins[0], ctx, "colour").filter(
        "eq", brightness=p["brightness"], contrast=p["contrast"], saturation=p["saturation"]
    )
    if p["hue"]:
        v = v.filter("hue", h=p["hue"])
    return replace(ins[0], video=v)


def _glitch(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    v = _need_video(ins[0], ctx, "glitch")
    if p["noise"]:
        v = v.filter("noise", alls=p["noise"], allf="t", all_seed=p["seed"])
    if p["shift"]:
        v = v.filter("rgbashift", rh=p["shift"], bh=-p["shift"])
    if p["decay"]:
        v = v.filter("lagfun", decay=p["decay"])
    return replace(ins[0], video=v)


def _gain(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m = ins[0]
    if m.audio is None:
        raise RenderError(f"step {ctx.step!r}: gain needs an audio stream, its input has none")
    return replace(m, audio=m.audio.filter("volume", f"{p['db']}dB"))


def _fade(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m = ins[0]
    if m.duration is None:
        raise RenderError(f"step {ctx.step!r}: fade needs to know its input's duration")
    fin, fout = p["fade_in"], p["fade_out"]
    out_start = max(0.0, m.duration - fout)
    a, v = m.audio, m.video
    if a is not None:
        if fin:
            a = a.filter("afade", t="in", st=0, d=fin)
        if fout:
            a = a.filter("afade", t="out", st=out_start, d=fout)
    if p["video"] and v is not None:
        if fin:
            v = v.filter("fade", t="in", st=0, d=fin)
        if fout:
            v = v.filter("fade", t="out", st=out_start, d=fout)
    return replace(m, video=v, audio=a)


def _fit(media: Media, to: Media, ctx: GraphContext, effect: str) -> Stream:
    v = _need_video(media, ctx, effect)
    if to.width and to.height:
        v = v.filter("scale", to.width, to.height)
    return v.filter("setsar", 1).filter("format", "yuv420p")


def _join(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    first = ins[0]
    with_audio = all(m.audio is not None for m in ins)
    with_video = all(m.video is not None for m in ins)
    if not with_audio and not with_video:
        raise RenderError(f"step {ctx.step!r}: sequence clips share no stream kind")
    streams: list[Stream] = []
    for m in ins:
        if with_video:
            streams.append(_fit(m, first, ctx, "sequence"))
        if with_audio and m.audio is not None:
            streams.append(
                m.audio.filter("aresample", 48000).filter("aformat", channel_layouts="stereo")
            )
    joined = ffmpeg.concat(*streams, n=len(ins), v=int(with_video), a=int(with_audio)).node
    v = joined[0] if with_video else None
    a = (joined[1] if with_video else joined[0]) if with_audio else None
    durations = [m.duration for m in ins]
    total = None if None in durations else sum(d for d in durations if d is not None)
    return Media(v, a, first.width, first.height, total)


def _blend(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    base, top = ins
    b = _need_video(base, ctx, "blend").filter("setsar", 1).filter("format", "yuv420p")
    t = _fit(top, base, ctx, "blend")
    v = ffmpeg.filter([b, t], "blend", all_mode=p["mode"], all_opacity=p["opacity"], shortest=1)
    return replace(base, video=v)


def _layer(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    base, top = ins
    t = _need_video(top, ctx, "layer")
    if p["scale"] != 1.0:
        t = t.filter("scale", f"trunc(iw*{p['scale']}/2)*2", f"trunc(ih*{p['scale']}/2)*2")
    b = _need_video(base, ctx, "layer")
    v = ffmpeg.filter([b, t], "overlay", x=p["x"], y=p["y"], eof_action="pass")
    return replace(base, video=v)


def _mux(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    vid, snd = ins
    v = _need_video(vid, ctx, "mux")
    if snd.audio is None:
        raise RenderError(f"step {ctx.step!r}: mux needs audio in its second input")
    a = snd.audio
    if vid.duration is not None:
        a = a.filter("apad").filter("atrim", duration=vid.duration)
    return Media(v, a, vid.width, vid.height, vid.duration)


def beat_slices(
    beats: Sequence[float], duration: float | None, p: dict[str, Any]
) -> list[tuple[float, float]]:
    """The (start, end) slices beat-cut keeps, in play order (pure; seeded)."""
    times = sorted(t for t in beats if t >= 0 and (duration is None or t < duration))
    if duration is not None:
        times.append(duration)
    slices = [(a, b) for a, b in itertools.pairwise(times) if b - a >= 0.04]
    if p["shuffle"]:
        random.Random(p["seed"]).shuffle(slices)
    if p["slices"]:
        slices = slices[: p["slices"]]
    return slices


def _beat_cut(ins: list[Media], p: dict[str, Any], ctx: GraphContext) -> Media:
    m = ins[0]
    slices = beat_slices(ctx.beats, m.duration, p)
    if not slices:
        raise RenderError(f"step {ctx.step!r}: beat-cut found no slice between the beats")
    streams: list[Stream] = []
    n = len(slices)
    vs = None if m.video is None else m.video.filter_multi_output("split", n)
    a_s = None if m.audio is None else m.audio.filter_multi_output("asplit", n)
    for i, (start, end) in enumerate(slices):
        if vs is not None:
            streams.append(
                vs[i].filter("trim", start=start, end=end).filter("setpts", "PTS-STARTPTS")
            )
        if a_s is not None:
            streams.append(
                a_s[i].filter("atrim", start=start, end=end).filter("asetpts", "PTS-STARTPTS")
            )
    has_v, has_a = m.video is not None, m.audio is not None
    joined = ffmpeg.concat(*streams, n=len(slices), v=int(has_v), a=int(has_a)).node
    v = joined[0] if has_v else None
    a = (joined[1] if has_v else joined[0]) if has_a else None
    return Media(v, a, m.width, m.height, sum(e - s for s, e in slices))


BUILDERS: dict[str, Callable[[list[Media], dict[str, Any], GraphContext], Media]] = {
    "resize": _resize,
    "rotate": _rotate,
    "crop": _crop,
    "segment": _segment,
    "speed": _speed,
    "colour": _colour,
    "glitch": _glitch,
    "gain": _gain,
    "fade": _fade,
    "sequence": _join,
    "blend": _blend,
    "layer": _layer,
    "mux": _mux,
    "beat-cut": _beat_cut,
}


def finish_for_delivery(media: Media) -> Media:
    """Make the picture H.264-friendly: 4:2:0 needs even sizes."""
    if media.video is None:
        return media
    v = media.video
    w, h = media.width, media.height
    if w is None or h is None or w % 2 or h % 2:
        v = v.filter("scale", "trunc(iw/2)*2", "trunc(ih/2)*2")
    return replace(media, video=v.filter("format", "yuv420p"))
