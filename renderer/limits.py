"""Resource limits for one ffmpeg run, and the check of a probed input against them.

Threat model: a render job comes from anyone on the network. Its media inputs may be crafted
to exhaust the machine (docs/decisions.md, "ffmpeg and rendering": a 199 kB MP4 of 8192x8192 frames
used 0.75-1.5 GB; a file that claims or holds hours of media) or to reach parsers we do not trust
(exotic demuxers and decoders, playlist demuxers that open other files). ``Limits`` holds

- caps checked on the *probed* input before anything is decoded (``check_media``): bytes,
  duration, frame size and pixel count, frame rate, streams, sample rate, channels, and the
  allowlists of demuxers (``containers``) and decoders (``codecs``);
- caps enforced while ffmpeg runs (see ``renderer.sandbox``): ``-max_alloc`` (largest single
  allocation), ``RLIMIT_AS`` (``memory_bytes``), ``RLIMIT_CPU`` (``cpu_seconds``),
  ``RLIMIT_NOFILE``, ``RLIMIT_FSIZE`` and ``-fs`` (``max_output_bytes``), ``-t``
  (``max_output_seconds``), a wall-clock kill (``timeout_s``), a lower scheduling priority
  (``niceness``, for volunteers lending spare CPU), and the pinned thread count and CPU flags
  that make renders reproducible.

Defaults suit a home machine rendering up to 4K: the biggest legit single allocation is a
4096x2160 frame in a 16-bit RGBA format (~70 MB), under ``max_alloc`` = 128 MiB, while an
8192x8192 packed RGB frame (256 MiB) is over it.

Containers allowed (demuxer names as ffmpeg reports the first of them): Matroska/WebM, MOV/MP4,
WAV, MP3, FLAC, Ogg, and single PNG/JPEG images (``png_pipe``/``jpeg_pipe``, which read one
file; ``image2`` is left out because it expands filename patterns). Playlist and indirection
demuxers (hls, dash, concat, image2, tee, ...) are never allowed.

Codecs allowed (decoded stream codecs): what cameras, phones and editors write today (H.264,
HEVC, VP8, VP9, AV1, MPEG-4 part 2, ProRes, MJPEG), the lossless intermediates artdag itself
writes (FFV1, PNG, FLAC, PCM), and the common audio codecs (AAC, MP3, Opus, Vorbis). Streams
that are neither video nor audio (data, timecode, attachments, subtitles) are counted against
``max_streams`` but never decoded, so their codecs are not checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from renderer.errors import InputRefused
from renderer.media_info import MediaInfo

__all__ = ["DEFAULT_CODECS", "DEFAULT_CONTAINERS", "Limits", "check_media"]

MiB = 1024 * 1024
GiB = 1024 * MiB

DEFAULT_CONTAINERS: frozenset[str] = frozenset(
    {"matroska", "mov", "wav", "mp3", "flac", "ogg", "png_pipe", "jpeg_pipe"}
)

DEFAULT_CODECS: frozenset[str] = frozenset(
    {
        # video
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "av1",
        "mpeg4",
        "prores",
        "mjpeg",
        "ffv1",
        "png",
        # audio
        "aac",
        "mp3",
        "opus",
        "vorbis",
        "flac",
        "pcm_s16le",
        "pcm_s24le",
        "pcm_s32le",
        "pcm_f32le",
    }
)


@dataclass(frozen=True)
class Limits:
    """Caps for one ffmpeg run; every field can be overridden (see ``from_mapping``)."""

    max_input_bytes: int = 4 * GiB
    max_duration_s: float = 4 * 3600.0
    max_width: int = 4096
    max_height: int = 4096
    max_pixels: int = 4096 * 2160
    max_streams: int = 16
    max_fps: float = 240.0
    max_sample_rate: int = 192_000
    max_channels: int = 8
    containers: frozenset[str] = DEFAULT_CONTAINERS
    codecs: frozenset[str] = DEFAULT_CODECS
    max_output_bytes: int = 4 * GiB
    max_output_seconds: float = 4 * 3600.0
    timeout_s: float = 3600.0
    cpu_seconds: int = 3600
    memory_bytes: int = 3 * GiB
    max_alloc: int = 128 * MiB
    nofile: int = 256
    threads: int = 1
    require_isolation: bool = True
    cpuflags: str = "mmx+mmxext+sse+sse2"
    niceness: int = 0  # added to the caller's nice value (nice -n) when > 0; a volunteer's 10

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "niceness":
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 19:
                    raise ValueError(f"renderer limit 'niceness' must be 0..19, got {value!r}")
            elif isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"renderer limit {field.name!r} must be positive, got {value!r}")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> Limits:
        """Build from a config section; an unknown key or a wrong type raises ValueError."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in m.items():
            if key not in names:
                raise ValueError(f"unknown renderer limit {key!r}")
            kwargs[key] = _coerce(key, hints[key], value)
        return cls(**kwargs)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"renderer limit {key!r} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"renderer limit {key!r} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"renderer limit {key!r} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"renderer limit {key!r} must be a string, got {value!r}")
        return value
    if typing.get_origin(hint) is frozenset or isinstance(hint, types.GenericAlias):
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            raise ValueError(f"renderer limit {key!r} must be a list of names, got {value!r}")
        if not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"renderer limit {key!r} must hold non-empty strings")
        return frozenset(value)
    raise ValueError(f"renderer limit {key!r} has an unsupported type")  # pragma: no cover


def _refuse(info: MediaInfo, what: str) -> InputRefused:
    return InputRefused(f"{info.path.name}: {what}")


def check_media(info: MediaInfo, limits: Limits) -> None:
    """Raise InputRefused naming the first limit ``info`` breaks."""
    if info.size > limits.max_input_bytes:
        raise _refuse(info, f"{info.size} bytes is over max_input_bytes={limits.max_input_bytes}")
    if info.demuxer not in limits.containers:
        raise _refuse(info, f"container {info.container!r} is not in the allowed containers")
    if len(info.streams) > limits.max_streams:
        raise _refuse(info, f"{len(info.streams)} streams is over max_streams={limits.max_streams}")
    if not any(s.kind in ("video", "audio") for s in info.streams):
        raise _refuse(info, "no audio or video stream")
    if info.duration is not None and info.duration > limits.max_duration_s:
        raise _refuse(
            info, f"duration {info.duration:.3f} s is over max_duration_s={limits.max_duration_s}"
        )
    for s in info.streams:
        if s.kind == "other":
            continue
        where = f"stream {s.index} ({s.kind})"
        if s.codec not in limits.codecs:
            raise _refuse(info, f"{where}: codec {s.codec!r} is not in the allowed codecs")
        if s.kind == "video":
            if s.width is None or s.height is None:
                raise _refuse(info, f"{where}: frame size unknown")
            if s.width > limits.max_width:
                raise _refuse(
                    info, f"{where}: width {s.width} is over max_width={limits.max_width}"
                )
            if s.height > limits.max_height:
                raise _refuse(
                    info, f"{where}: height {s.height} is over max_height={limits.max_height}"
                )
            if s.width * s.height > limits.max_pixels:
                raise _refuse(
                    info,
                    f"{where}: {s.width}x{s.height} is over max_pixels={limits.max_pixels}",
                )
            if s.fps is not None and s.fps > limits.max_fps:
                raise _refuse(info, f"{where}: {s.fps} fps is over max_fps={limits.max_fps}")
        else:
            if s.sample_rate is None or s.channels is None:
                raise _refuse(info, f"{where}: sample rate or channel layout unknown")
            if s.sample_rate > limits.max_sample_rate:
                raise _refuse(
                    info,
                    f"{where}: {s.sample_rate} Hz is over max_sample_rate={limits.max_sample_rate}",
                )
            if s.channels > limits.max_channels:
                raise _refuse(
                    info,
                    f"{where}: {s.channels} channels is over max_channels={limits.max_channels}",
                )
