"""Content keys: a hash of a media file's *decoded* streams, not of its container bytes.

Two renders of one job are compared by what they show and sound like (DESIGN "Rendering":
quorum on decoded-frame hashes): container bytes differ with muxer versions, ids and
metadata, while the same build with the same thread count reproduces decoded content (FACTS).
The key is computed in the sandbox with ffmpeg's ``streamhash`` muxer::

    ffmpeg -threads 0 -i OUT -map 0:v? -map 0:a? -f streamhash -hash sha256 -

which prints one ``<index>,<v|a>,SHA256=<hex>`` line per stream, hashing the decoded frames
(rawvideo / PCM). The key is ``"sha256:" + sha256(those lines, newline-terminated)``, so the
same decoded content in Matroska and in NUT/MP4 gives the same key and one changed pixel or
sample changes it. The file is probed first (same limits as any input).
"""

from __future__ import annotations

import hashlib
import re
from contextlib import ExitStack
from pathlib import Path

from renderer.errors import RenderFailed
from renderer.limits import Limits
from renderer.probe import probe
from renderer.sandbox import failure, global_args, input_args, open_inputs, run_sandboxed

__all__ = ["content_key", "stream_hashes"]

_LINE = re.compile(r"\d+,[va],SHA256=[0-9a-f]{64}\Z")


async def stream_hashes(path: Path, limits: Limits) -> list[str]:
    """The ``streamhash`` lines (one per audio/video stream) of ``path``'s decoded content."""
    info = await probe(Path(path), limits)
    with ExitStack() as stack:
        (fd,) = open_inputs(stack, [Path(path)])
        argv = global_args(limits)
        # Decoders are bit-exact whatever their thread count (ffmpeg's FATE suite checks
        # decoded frames under threading); only encoders need pinned threads. So decode with
        # every core: the key is the same and it costs less wall time.
        argv += input_args(limits, fd, info.demuxer, threads=0)
        argv += ["-map", "0:v?", "-map", "0:a?", "-threads", str(limits.threads)]
        argv += ["-f", "streamhash", "-hash", "sha256", "pipe:1"]
        result = await run_sandboxed(argv, limits, pass_fds=(fd,), fsize=1)
    if result.returncode != 0:
        raise failure(result, limits, "content hashing")
    lines = result.stdout.decode("ascii", "replace").split()
    if not lines or not all(_LINE.match(line) for line in lines):
        raise RenderFailed(f"{Path(path).name}: unexpected streamhash output")
    return lines


async def content_key(path: Path, limits: Limits) -> str:
    """``"sha256:<hex>"`` over the per-stream hashes of the decoded content of ``path``."""
    lines = await stream_hashes(path, limits)
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode("ascii"))
    return "sha256:" + digest.hexdigest()
