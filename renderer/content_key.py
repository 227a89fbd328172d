"""Content keys: a hash of a media file's *decoded* streams, not of its container bytes.

Two renders of one job are compared by what they show and sound like (DESIGN "Rendering":
quorum on decoded-frame hashes): container bytes differ with muxer versions, ids and
metadata, while the same build with the same thread count reproduces decoded content
(docs/decisions.md). The key is what ffmpeg's ``streamhash`` muxer computes::

    ffmpeg -threads 0 -i OUT -map 0:v? -map 0:a? -f streamhash -hash sha256 -

one ``<index>,<v|a>,SHA256=<hex>`` line per stream, hashing the decoded frames (rawvideo /
PCM) — but with the decoding in the sandbox and the hashing in Python (see stream_hashes).
The key is ``"sha256:" + sha256(those lines, newline-terminated)``, so the
same decoded content in Matroska and in NUT/MP4 gives the same key and one changed pixel or
sample changes it. The file is probed first (same limits as any input).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

import trio

from renderer.errors import RenderFailed
from renderer.limits import Limits
from renderer.probe import probe
from renderer.sandbox import failure, global_args, input_args, open_inputs, run_sandboxed

__all__ = ["content_key", "stream_hashes"]

_LINE = re.compile(r"\d+,[va],SHA256=[0-9a-f]{64}\Z")


async def stream_hashes(
    path: Path, limits: Limits, *, known: Mapping[int, str] | None = None
) -> list[str]:
    """The ``streamhash`` lines (one per audio/video stream) of ``path``'s decoded content.

    Each stream is decoded in its own sandboxed ffmpeg that writes the decoded data (rawvideo
    for pictures, pcm_s16le for sound: the codecs ffmpeg's ``streamhash`` muxer uses) to a pipe,
    and Python hashes it. ffmpeg's own sha256 runs at ~180 MB/s here while hashlib's uses the
    CPU's SHA extensions (~2 GB/s), and decoding alone is several times faster than decoding
    plus hashing in ffmpeg; the lines are byte-for-byte what ``-f streamhash -hash sha256``
    prints (a test checks this). ``known`` maps a stream index to a hash already computed
    while the file was encoded (``RunReport.stream_hash``); those streams are not decoded."""
    info = await probe(Path(path), limits)
    media = [s for s in info.streams if s.kind in ("video", "audio")]
    lines: list[str] = [""] * len(media)

    async def one(slot: int, index: int, kind: str) -> None:
        digest = hashlib.sha256()
        with ExitStack() as stack:
            (fd,) = open_inputs(stack, [Path(path)])
            argv = global_args(limits)
            argv += input_args(limits, fd, info.demuxer, threads=0)
            codec, fmt = ("rawvideo", "rawvideo") if kind == "video" else ("pcm_s16le", "s16le")
            argv += ["-map", f"0:{index}", "-c", codec, "-f", fmt, "pipe:1"]
            result = await run_sandboxed(
                argv,
                limits,
                pass_fds=(fd,),
                fsize=1,
                keep_stdout=False,
                on_stdout_chunk=digest.update,
            )
        if result.returncode != 0:
            raise failure(result, limits, "content hashing")
        lines[slot] = f"{slot},{kind[0]},SHA256={digest.hexdigest()}"

    async with trio.open_nursery() as nursery:
        for slot, stream in enumerate(media):
            if known and stream.index in known:
                lines[slot] = f"{slot},{stream.kind[0]},{known[stream.index]}"
            else:
                nursery.start_soon(one, slot, stream.index, stream.kind)
    if not lines or not all(_LINE.match(line) for line in lines):
        raise RenderFailed(f"{Path(path).name}: has no audio or video stream to hash")
    return lines


async def content_key(path: Path, limits: Limits, *, known: Mapping[int, str] | None = None) -> str:
    """``"sha256:<hex>"`` over the per-stream hashes of the decoded content of ``path``."""
    lines = await stream_hashes(path, limits, known=known)
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode("ascii"))
    return "sha256:" + digest.hexdigest()
