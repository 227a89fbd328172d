"""Perceptual fingerprints and the near-duplicate index.

Media is generated with ffmpeg lavfi sources (tests/harness/media.py) and fingerprinted through the
renderer's sandbox (``renderer.fingerprinting``): copies of one clip (re-encoded at a low
bitrate, resized to half, cropped by 10% on every edge, brightened) are near-duplicates of it;
clips from other sources are not. The index tests add synthetic fingerprints (random hashes,
made in-process) around the real ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from provenance.fingerprints import (
    Fingerprint,
    FingerprintError,
    FingerprintIndex,
    dhash,
    distance,
    is_near_duplicate,
    similarity,
)
from renderer.fingerprinting import fingerprint_file
from renderer.limits import Limits
from tests.harness.media import make_audio, make_video, run_ffmpeg_cli

pytestmark = pytest.mark.ffmpeg

LIMITS = Limits()
SIZE = "320x180"

COPIES = {
    "reencode": ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "150k"],
    "resize": ["-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-preset", "ultrafast"],
    "crop": ["-vf", "crop=iw*0.8:ih*0.8", "-c:v", "libx264", "-preset", "ultrafast"],
    "brightness": ["-vf", "eq=brightness=0.1", "-c:v", "libx264", "-preset", "ultrafast"],
}
DISTINCT = {
    "testsrc": f"testsrc=size={SIZE}:rate=25",
    "smptebars": f"smptebars=size={SIZE}:rate=25",
    "mandelbrot": f"mandelbrot=size={SIZE}:rate=25",
    "life": f"life=size={SIZE}:rate=25:seed=3:ratio=0.1",
    "cellauto": f"cellauto=size={SIZE}:rate=25:rule=110:seed=2:random_fill_ratio=0.3",
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fingerprints")
    out = {"original": make_video(folder / "original.mkv", seconds=4, with_audio=False)}
    for name, args in COPIES.items():
        out[name] = folder / f"{name}.mp4"
        run_ffmpeg_cli(
            ["-i", str(out["original"]), *args, "-pix_fmt", "yuv420p", "-y", str(out[name])]
        )
    for name, source in DISTINCT.items():
        out[name] = folder / f"{name}.mkv"
        run_ffmpeg_cli(
            ["-f", "lavfi", "-i", source, "-t", "4", "-c:v", "ffv1", "-y", str(out[name])]
        )
    out["beats"] = make_audio(folder / "beats.wav", seconds=6, kind="beats", bpm=120)
    out["beats_quiet"] = folder / "beats_quiet.flac"
    run_ffmpeg_cli(
        [
            "-i",
            str(out["beats"]),
            "-af",
            "volume=0.5",
            "-ar",
            "22050",
            "-y",
            str(out["beats_quiet"]),
        ]
    )
    out["beats_slow"] = make_audio(folder / "slow.wav", seconds=6, kind="beats", bpm=75)
    return out


@pytest.fixture(scope="module")
def prints(media: dict[str, Path]) -> dict[str, Fingerprint]:
    import trio

    async def all_prints() -> dict[str, Fingerprint]:
        return {name: await fingerprint_file(path, LIMITS) for name, path in media.items()}

    return trio.run(all_prints)


def test_copies_are_near_duplicates(prints: dict[str, Fingerprint]) -> None:
    original = prints["original"]
    assert original.kind == "video" and len(original) == 8  # 4 s at 2 frames a second
    for name in COPIES:
        assert is_near_duplicate(original, prints[name]), (name, distance(original, prints[name]))
        assert is_near_duplicate(prints[name], original), name


def test_distinct_clips_are_not(prints: dict[str, Fingerprint]) -> None:
    names = ["original", *DISTINCT]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not is_near_duplicate(prints[a], prints[b]), (
                a,
                b,
                distance(prints[a], prints[b]),
            )
        for copy in COPIES:
            if a != "original":
                assert not is_near_duplicate(prints[a], prints[copy]), (a, copy)


def test_audio_envelope(prints: dict[str, Fingerprint]) -> None:
    beats = prints["beats"]
    assert beats.kind == "audio" and len(beats) == 60  # 6 s at 10 values a second
    assert is_near_duplicate(beats, prints["beats_quiet"])  # gain and sample rate changed
    assert not is_near_duplicate(beats, prints["beats_slow"])
    assert not is_near_duplicate(beats, prints["original"])  # different kinds never match


def test_bytes_round_trip(prints: dict[str, Fingerprint]) -> None:
    for fp in (prints["original"], prints["beats"]):
        data = fp.to_bytes()
        back = Fingerprint.from_bytes(data)
        assert back == fp and distance(back, fp) == 0.0 and similarity(back, fp) == 1.0
    assert len(prints["original"].to_bytes()) == 17 + 32 * 8
    with pytest.raises(FingerprintError, match="bad magic"):
        Fingerprint.from_bytes(b"XXXX" + prints["original"].to_bytes()[4:])
    with pytest.raises(FingerprintError, match="does not match"):
        Fingerprint.from_bytes(prints["original"].to_bytes()[:-1])


def test_dhash_bits() -> None:
    ramp = bytes(x * 20 for _ in range(9) for x in range(9))  # brighter to the right
    assert dhash(ramp) == 0  # never brighter than the right neighbour or the one below
    falling = bytes(200 - x * 20 for _ in range(9) for x in range(9))
    assert dhash(falling) == ((1 << 64) - 1) << 64  # every across-bit, no down-bit
    with pytest.raises(FingerprintError, match="9x9"):
        dhash(bytes(72))
    with pytest.raises(FingerprintError, match="128-bit"):
        Fingerprint("video", 2.0, 1.0, (1 << 130,), (0,))


def _random_fp(rng: random.Random) -> Fingerprint:
    n = rng.randint(8, 30)
    hashes = tuple(rng.getrandbits(128) for _ in range(n))
    return Fingerprint("video", 2.0, n / 2, hashes, tuple(rng.getrandbits(128) for _ in range(n)))


def test_index_finds_the_original_among_many(prints: dict[str, Fingerprint]) -> None:
    rng = random.Random(6)
    index = FingerprintIndex()
    for k in range(3000):
        index.add(f"noise{k}", _random_fp(rng))
    for name in ["original", *DISTINCT, "beats"]:
        index.add(name, prints[name])
    assert len(index) == 3000 + len(DISTINCT) + 2
    for copy in COPIES:
        hits = index.query(prints[copy], limit=5)
        assert hits and hits[0][0] == "original", (copy, hits)
        assert all(key == "original" for key, _ in hits)  # nothing else is near
        assert 0.8 < hits[0][1] <= 1.0
    assert index.query(prints["beats_quiet"])[0][0] == "beats"
    assert index.query(prints["beats_slow"]) == []

    restored = FingerprintIndex.from_rows(index.to_rows())
    assert len(restored) == len(index)
    assert restored.query(prints["crop"])[0][0] == "original"

    index.remove("original")
    assert "original" not in index and len(index) == 3000 + len(DISTINCT) + 1
    assert index.query(prints["crop"]) == []
    with pytest.raises(KeyError):
        index.remove("original")
