"""Shared pieces of the renderer tests: generated media (tests/harness/media.py, lavfi
sources; nothing downloaded), a real store + render service in a temp directory, and probing a
stored output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import dag
from daemon.core.render.service import RenderService
from dag import CID
from provenance import Identity
from renderer import Limits, MediaInfo, probe
from tests.harness.media import make_audio, make_video

LIMITS = Limits()


@dataclass(frozen=True)
class MediaSet:
    clip: Path  # 320x180, 1 s, 25 fps, FFV1 + FLAC (testsrc2 + 440 Hz)
    red: Path  # 160x90 solid red, 1 s, with audio
    silent: Path  # 320x180, 1 s, no audio
    clicks: Path  # 120 bpm click track, 2 s, WAV
    fast_clicks: Path  # 240 bpm click track, 1 s, WAV (4 beats in the clip's second)


def make_media(root: Path) -> MediaSet:
    return MediaSet(
        clip=make_video(root / "clip.mkv", seconds=1),
        red=make_video(root / "red.mkv", seconds=1, size="160x90", colour="red"),
        silent=make_video(root / "silent.mkv", seconds=1, with_audio=False),
        clicks=make_audio(root / "clicks.wav", seconds=2, kind="beats", bpm=120),
        fast_clicks=make_audio(root / "fast.wav", seconds=1, kind="beats", bpm=240),
    )


@asynccontextmanager
async def render_service(
    root: Path, identity: Identity | None = None
) -> AsyncIterator[RenderService]:
    store = dag.FlatFsBlockstore(root / "store")
    service = RenderService(
        store, identity or Identity.generate(), root / "index.db", LIMITS, workroot=root
    )
    try:
        yield service
    finally:
        service.close()
        await store.aclose()


async def add(service: RenderService, path: Path) -> CID:
    return (await dag.import_file(service.store, path)).cid


async def probe_stored(service: RenderService, cid: CID, where: Path) -> MediaInfo:
    """Copy a stored file out and probe it with the renderer's own probe."""
    target = where / f"probe-{cid}"
    with open(target, "wb") as f:
        async for piece in dag.read_file(service.store, cid):
            f.write(piece)
    return await probe(target, LIMITS)
