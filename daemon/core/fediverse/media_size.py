"""The width and height a published Note gives its media, probed in the renderer's sandbox."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import trio

__all__ = ["media_dimensions"]

log = logging.getLogger("artdag.activitypub")

_PROBE_MAX_BYTES = 2 << 30


async def media_dimensions(
    chunks: AsyncIterator[bytes], mime: str, size: int, name: str
) -> tuple[int | None, int | None]:
    """Width and height of a video or image (None, None for other media, or when the bytes
    are not media after all); ``chunks`` are its bytes, ``name`` says what it is in logs."""
    if not mime.startswith(("video/", "image/")) or size > _PROBE_MAX_BYTES:
        return None, None
    from renderer.limits import Limits
    from renderer.probe import probe

    with tempfile.TemporaryDirectory(prefix="artdag-publish-") as tmp:
        path = Path(tmp) / "work"
        with open(path, "wb") as f:
            async for piece in chunks:
                await trio.to_thread.run_sync(f.write, piece)
        try:
            info = await probe(path, Limits())
        except Exception as exc:  # not media after all: publish without dimensions
            log.info("cannot probe %s for its size: %s", name, exc)
            return None, None
    video = info.video
    return (video.width, video.height) if video is not None else (None, None)
