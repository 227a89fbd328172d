"""What a probe of a media file found: its container and streams (``MediaInfo``).

Plain data shared by :mod:`renderer.probe` (which builds it from ffmpeg's report),
:mod:`renderer.limits` (which checks it) and :mod:`renderer.sandbox` (which forces its demuxer):
it lives below all three so that none of them imports another to name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["MediaInfo", "StreamInfo"]


@dataclass(frozen=True)
class StreamInfo:
    """One stream as probed; sizes and rates are None when they do not apply."""

    index: int
    kind: Literal["video", "audio", "other"]
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    """A probed file: ``demuxer`` is the name to force with ``-f`` (e.g. ``matroska``),
    ``container`` ffmpeg's full demuxer name (e.g. ``matroska,webm``)."""

    path: Path
    size: int
    container: str
    demuxer: str
    duration: float | None
    streams: tuple[StreamInfo, ...]

    @property
    def video(self) -> StreamInfo | None:
        """The first video stream, if any."""
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        """The first audio stream, if any."""
        return next((s for s in self.streams if s.kind == "audio"), None)
