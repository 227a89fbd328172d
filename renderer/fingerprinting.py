"""Perceptual fingerprints of media files: decode in the sandbox, hash in
``provenance.fingerprints``.

Video: one sandboxed ffmpeg run samples ``VIDEO_RATE`` frames a second (the first
``MAX_SECONDS``), turns each grey and reduces it twice by area averaging, whole and its central
80%, to 9x9 pixels, stacked into one 9x18 raw frame on stdout; the pure side hashes them.
8-bit grey, not 16-bit: measured, the rounding's dead zone keeps the bits of flat regions
stable across re-encodes, and 16 bits did not help busy, noise-like pictures either.
Audio-only files: mono 8 kHz PCM, then a 100 ms RMS envelope.
Both read at most ``MAX_SECONDS``. The input is probed and checked against ``Limits`` like every
other input of the renderer, and read through an inherited descriptor (``renderer.sandbox``).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from provenance.fingerprints import (
    AUDIO_RATE,
    HASH_SIZE,
    MAX_SECONDS,
    VIDEO_RATE,
    Fingerprint,
    audio_fingerprint,
    video_fingerprint,
)
from renderer.errors import InputRefused
from renderer.limits import Limits, check_media
from renderer.probe import MediaInfo, probe
from renderer.sandbox import (
    SWS_FLAGS,
    failure,
    global_args,
    input_args,
    open_inputs,
    run_sandboxed,
)

__all__ = ["AUDIO_SAMPLE_RATE", "FINGERPRINT_GRAPH", "fingerprint_file", "fingerprint_probed"]

AUDIO_SAMPLE_RATE = 8000
_FRAME = HASH_SIZE * HASH_SIZE  # bytes of one reduced image
FINGERPRINT_GRAPH = (
    f"sws_flags={SWS_FLAGS};"
    f"[0:v:0]fps={VIDEO_RATE:g},format=gray,split[whole][centre];"
    f"[whole]scale={HASH_SIZE}:{HASH_SIZE}:flags=area[w];"
    f"[centre]crop=iw*0.8:ih*0.8,scale={HASH_SIZE}:{HASH_SIZE}:flags=area[c];"
    "[w][c]vstack[out]"
)


def _open_probed(stack: ExitStack, info: MediaInfo, limits: Limits) -> int:
    """Re-check the probed input against ``limits`` and open it (read-only fd)."""
    check_media(info, limits)
    (fd,) = open_inputs(stack, [info.path])
    if os.fstat(fd).st_size != info.size:
        raise InputRefused(f"{info.path.name}: changed since it was probed")
    return fd


async def _decode(info: MediaInfo, limits: Limits, output: list[str], max_bytes: int) -> bytes:
    """Run ffmpeg on ``info`` in the sandbox with ``output`` options writing to stdout."""
    with ExitStack() as stack:
        fd = _open_probed(stack, info, limits)
        argv = global_args(limits) + input_args(limits, fd, info.demuxer) + output
        result = await run_sandboxed(argv, limits, pass_fds=(fd,), max_stdout=max_bytes)
    if result.returncode != 0:
        raise failure(result, limits, "fingerprint decode")
    return result.stdout


async def _video(info: MediaInfo, limits: Limits) -> Fingerprint:
    max_frames = int(MAX_SECONDS * VIDEO_RATE)
    output = ["-filter_complex", FINGERPRINT_GRAPH, "-map", "[out]", "-an", "-sn", "-dn"]
    output += ["-frames:v", str(max_frames), "-c:v", "rawvideo", "-f", "rawvideo", "pipe:1"]
    data = await _decode(info, limits, output, max_frames * 2 * _FRAME + 4096)
    size = 2 * _FRAME
    frames = [
        (data[at : at + _FRAME], data[at + _FRAME : at + size])
        for at in range(0, len(data) - size + 1, size)
    ]
    seconds = min(info.duration or len(frames) / VIDEO_RATE, MAX_SECONDS)
    return video_fingerprint(frames, VIDEO_RATE, seconds)


async def _audio(info: MediaInfo, limits: Limits) -> Fingerprint:
    output = ["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(AUDIO_SAMPLE_RATE)]
    output += ["-t", f"{MAX_SECONDS:g}", "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"]
    max_bytes = int(MAX_SECONDS * AUDIO_SAMPLE_RATE) * 2 + 65536
    pcm = await _decode(info, limits, output, max_bytes)
    return audio_fingerprint(pcm, AUDIO_SAMPLE_RATE, AUDIO_RATE)


async def fingerprint_probed(info: MediaInfo, limits: Limits) -> Fingerprint:
    """The fingerprint of an already probed file: video if it has a video stream, else audio."""
    if info.video is not None:
        return await _video(info, limits)
    if info.audio is not None:
        return await _audio(info, limits)
    raise InputRefused(f"{info.path.name}: has neither video nor audio to fingerprint")


async def fingerprint_file(path: Path, limits: Limits) -> Fingerprint:
    """Probe ``path`` in the sandbox and fingerprint it (video if it has a video stream, else
    audio). Raises InputRefused / RenderFailed like every renderer input."""
    info = await probe(Path(path), limits)
    return await fingerprint_probed(info, limits)
