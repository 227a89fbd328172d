"""The one ffmpeg build artdag renders with: imageio-ffmpeg's static binary.

Why this build and no other (docs/decisions.md, "ffmpeg and rendering"): determinism of decoded
content holds only for one build with one thread count, and the imageio-ffmpeg wheel ships the same
static ffmpeg on every x86-64 machine without root. Debian's ffmpeg (5.1) would give other
pictures for the same job, so it is never picked up from ``PATH``.
"""

from __future__ import annotations

import functools
import re
import subprocess

import imageio_ffmpeg

__all__ = ["ffmpeg_exe", "ffmpeg_version"]


@functools.cache
def ffmpeg_exe() -> str:
    """Absolute path of imageio-ffmpeg's ffmpeg binary."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@functools.cache
def ffmpeg_version() -> str:
    """E.g. ``"ffmpeg n9.0.2 (imageio-ffmpeg 0.8.1)"`` (runs ``ffmpeg -version`` once)."""
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-version"],
        capture_output=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    first = done.stdout.decode("utf-8", "replace").split("\n", 1)[0]
    match = re.match(r"ffmpeg version (\S+)", first)
    raw = match.group(1) if match else "unknown"
    # "n9.0.2-17-g2a571b6068-20260930" -> "n9.0.2": the release, not the build date.
    release = re.match(r"n?\d+(?:\.\d+)*", raw)
    version = release.group(0) if release else raw
    if not version.startswith("n") and version[:1].isdigit():
        version = "n" + version
    return f"ffmpeg {version} (imageio-ffmpeg {imageio_ffmpeg.__version__})"
