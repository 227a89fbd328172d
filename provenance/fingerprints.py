"""Perceptual fingerprints of video and audio assets, and a near-duplicate index over them.

Pure: no I/O, no ffmpeg (``renderer.fingerprinting`` decodes media into the numbers used here).

**Video.** Frames are sampled at a fixed rate in *time* (``VIDEO_RATE`` = 2 per second, the first
``MAX_SECONDS`` = 120 s), each reduced to a 9x9 grayscale image, and hashed with a 128-bit
difference hash (dHash: 64 bits "this pixel is brighter than its right neighbour" and 64 bits
"... than the one below"; the usual 64-bit dHash compares across only, and then every picture
that varies only from top to bottom, or is a left-to-right ramp, hashes to zero: measured,
two of the bench's distinct test patterns collided at distance 0). The dHash ignores the
picture's size, codec noise and any uniform brightness shift by construction. Each
frame carries a second dHash over its central 80% (10% cut from each edge): a copy cropped by
up to ~10% a side then matches the original's central hash. ``distance`` compares two
sequences frame by frame at the best of a few time offsets (``MAX_SHIFT`` samples, for copies
that gained or lost a frame at the start) and under the three pairings full/full,
central/full and full/central, as the mean Hamming distance over 128 bits (0 same .. ~0.5
unrelated). Near-duplicate at most ``VIDEO_THRESHOLD`` = 0.17, set from ``bench/fingerprint.py``
(30 generated clips x 4 copies): resized, cropped and brightened copies measured 0.00-0.13,
re-encodes at 150 kb/s 0.00-0.12 except busy noise-like pictures (Game of Life, a fine zone
plate: 0.21-0.23, which no 9x9 hash survives); distinct clips 0.10 and up, only two smooth
ramp-like patterns below 0.17 (0.2% of the distinct pairs).

**Audio.** The level in dB (RMS) of each 100 ms of mono audio, stored in 0.5 dB steps below
full scale (``envelope``). ``distance`` removes each envelope's median (a gain change is not a
new work), then takes the mean absolute difference in dB at the best offset, over 30 dB.
For indexing, every ``AUDIO_HOP`` samples a 64-bit hash of the next 65 levels' rises and falls
(a 1-D dHash) stands in for a frame hash. Limit: envelopes that are flat (a steady tone,
silence) cannot tell works apart and all look alike.

**Index.** Multi-index hashing: every indexed hash (at most ``max_keyframes`` per fingerprint,
sampled on a fixed time grid so a copy's query hashes fall on the same grid) is cut into
eight (video) or four (audio) 16-bit bands, and each band value is a dict bucket of fingerprint
ids (``array('I')``, 4 bytes an entry). A hash within 7 bits of an indexed one shares at
least one band exactly (pigeonhole); copies differ by more on some frames but share bands on
most. A query counts the bands each candidate shares, verifies the best-counted few with a
cheap distance on the key frames, then the full ``distance``. Over-full buckets (flat frames
hash alike) are skipped as stop words. Hand-written rather than a library (e.g. FAISS binary
indexes) because the data are small, it needs no native dependency, and removal and
persistence stay simple.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .errors import ProvenanceError

__all__ = [
    "AUDIO_RATE",
    "AUDIO_THRESHOLD",
    "MAX_SECONDS",
    "VIDEO_RATE",
    "VIDEO_THRESHOLD",
    "Fingerprint",
    "FingerprintError",
    "FingerprintIndex",
    "audio_fingerprint",
    "dhash",
    "distance",
    "is_near_duplicate",
    "similarity",
    "video_fingerprint",
]

Kind = Literal["video", "audio"]

VIDEO_RATE = 2.0  # sampled frames per second
AUDIO_RATE = 10.0  # envelope values per second (100 ms each)
MAX_SECONDS = 120.0  # fingerprint the first two minutes
HASH_SIZE = 9  # a dHash image is 9x9: 8x8 comparisons across and 8x8 down
HASH_BITS = 128
MAX_SHIFT = 2  # video: offsets tried, in samples (1 s at 2 fps)
AUDIO_MAX_SHIFT = 5  # audio: offsets tried, in samples (0.5 s)
VIDEO_THRESHOLD = 0.17  # near-duplicate when the mean Hamming fraction is at most this
AUDIO_THRESHOLD = 0.10  # near-duplicate when the mean dB difference / 30 dB is at most this
AUDIO_DB_SCALE = 30.0
AUDIO_HOP = 5  # audio index hashes every 0.5 s
MIN_OVERLAP = 0.5  # fraction of the shorter sequence that must overlap at an offset

_MAGIC = b"AFP1"
_HEADER = struct.Struct("<4sBffI")  # magic, kind, rate, duration, count
_KINDS: dict[str, int] = {"video": 1, "audio": 2}
_MASK64 = (1 << 64) - 1
_MASK = (1 << HASH_BITS) - 1


class FingerprintError(ProvenanceError, ValueError):
    """A fingerprint is malformed, or its serialized bytes cannot be read."""


@dataclass(frozen=True)
class Fingerprint:
    """A perceptual fingerprint.

    ``kind`` "video": ``hashes`` (whole frame) and ``crop_hashes`` (central 80%) are 128-bit
    dHashes of frames sampled ``rate`` times a second. ``kind`` "audio": ``envelope`` holds one
    byte per 1/``rate`` s, the RMS level in 0.5 dB steps below full scale (0 = 0 dBFS).
    ``duration`` is the length in seconds of what was fingerprinted.
    """

    kind: Kind
    rate: float
    duration: float
    hashes: tuple[int, ...] = ()
    crop_hashes: tuple[int, ...] = ()
    envelope: bytes = b""
    _levels: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise FingerprintError(f"fingerprint kind must be video or audio, not {self.kind!r}")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise FingerprintError(f"fingerprint rate must be positive, got {self.rate!r}")
        if not (self.duration >= 0 and math.isfinite(self.duration)):
            raise FingerprintError(f"fingerprint duration must be >= 0, got {self.duration!r}")
        if self.kind == "video":
            if len(self.hashes) != len(self.crop_hashes):
                raise FingerprintError("video fingerprint: hashes and crop_hashes differ in length")
            if self.envelope:
                raise FingerprintError("video fingerprint: has an audio envelope")
            for h in (*self.hashes, *self.crop_hashes):
                if not isinstance(h, int) or not 0 <= h <= _MASK:
                    raise FingerprintError(f"video fingerprint: {h!r} is not a 128-bit hash")
        else:
            if self.hashes or self.crop_hashes:
                raise FingerprintError("audio fingerprint: has frame hashes")
            if not isinstance(self.envelope, bytes):
                raise FingerprintError("audio fingerprint: envelope must be bytes")
            levels = sorted(self.envelope)
            median = levels[len(levels) // 2] if levels else 0
            # dB relative to the median level (gain-independent)
            object.__setattr__(self, "_levels", tuple((median - v) / 2 for v in self.envelope))

    def __len__(self) -> int:
        """The number of samples (frames or envelope values)."""
        return len(self.hashes) if self.kind == "video" else len(self.envelope)

    def to_bytes(self) -> bytes:
        """Compact serialization: a 17-byte header, then 32 bytes a frame or 1 a level."""
        head = _HEADER.pack(_MAGIC, _KINDS[self.kind], self.rate, self.duration, len(self))
        if self.kind == "audio":
            return head + self.envelope
        pairs = zip(self.hashes, self.crop_hashes, strict=True)
        body = array("Q", [v for pair in pairs for h in pair for v in (h & _MASK64, h >> 64)])
        if body.itemsize != 8:  # pragma: no cover - every platform we run on
            raise FingerprintError("array('Q') is not 64-bit here")
        return head + _little_endian(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Read ``to_bytes`` output; raises FingerprintError on anything else."""
        if len(data) < _HEADER.size:
            raise FingerprintError(f"fingerprint: {len(data)} bytes is too short")
        magic, kind_code, rate, duration, count = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise FingerprintError("fingerprint: not artdag fingerprint bytes (bad magic)")
        kind = {v: k for k, v in _KINDS.items()}.get(kind_code)
        if kind is None:
            raise FingerprintError(f"fingerprint: unknown kind code {kind_code}")
        body = data[_HEADER.size :]
        if kind == "audio":
            if len(body) != count:
                raise FingerprintError("fingerprint: envelope length does not match its count")
            return cls("audio", rate, duration, envelope=bytes(body))
        if len(body) != 32 * count:
            raise FingerprintError("fingerprint: frame data length does not match its count")
        values = array("Q")
        values.frombytes(body)
        if struct.pack("=H", 1) != struct.pack("<H", 1):  # pragma: no cover - big-endian host
            values.byteswap()
        hashes = [lo | (hi << 64) for lo, hi in zip(values[0::2], values[1::2], strict=True)]
        return cls("video", rate, duration, tuple(hashes[0::2]), tuple(hashes[1::2]))


def _little_endian(values: array[int]) -> bytes:
    if struct.pack("=H", 1) != struct.pack("<H", 1):  # pragma: no cover - big-endian host
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


# ---- building fingerprints from decoded samples -----------------------------------------------


def dhash(pixels: Sequence[int] | bytes) -> int:
    """The 128-bit difference hash of a 9x9 grayscale image (row-major): the high 64 bits say
    for rows 0-7 whether each pixel is brighter than its right neighbour, the low 64 bits for
    columns 0-7 whether each pixel is brighter than the one below."""
    n = HASH_SIZE
    if len(pixels) != n * n:
        raise FingerprintError(f"dhash: {len(pixels)} pixels is not {n}x{n}")
    value = 0
    for y in range(n - 1):
        for x in range(n - 1):
            value = (value << 1) | (pixels[y * n + x] > pixels[y * n + x + 1])
    for x in range(n - 1):
        for y in range(n - 1):
            value = (value << 1) | (pixels[y * n + x] > pixels[(y + 1) * n + x])
    return value


def video_fingerprint(
    frames: Iterable[tuple[Sequence[int], Sequence[int]]],
    rate: float = VIDEO_RATE,
    duration: float | None = None,
) -> Fingerprint:
    """A video fingerprint from (whole frame, central 80%) pairs of 9x9 grayscale images."""
    full: list[int] = []
    crop: list[int] = []
    for whole, centre in frames:
        full.append(dhash(whole))
        crop.append(dhash(centre))
    length = len(full) / rate if duration is None else duration
    return Fingerprint("video", rate, length, tuple(full), tuple(crop))


def audio_fingerprint(pcm: bytes, sample_rate: int, rate: float = AUDIO_RATE) -> Fingerprint:
    """An audio fingerprint from mono s16le PCM: the RMS level of each 1/``rate`` s window."""
    step = max(1, round(sample_rate / rate))
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if struct.pack("=H", 1) != struct.pack("<H", 1):  # pragma: no cover - big-endian host
        samples.byteswap()
    levels = bytearray()
    for start in range(0, len(samples) - step + 1, step):
        window = samples[start : start + step]
        power = sum(v * v for v in window) / step
        db = 10 * math.log10(power / (32768.0 * 32768.0)) if power > 0 else -127.5
        levels.append(min(255, max(0, round(-db * 2))))
    return Fingerprint("audio", rate, len(samples) / sample_rate, envelope=bytes(levels))


# ---- comparing two fingerprints -----------------------------------------------------------


def _seq_distance(a: Sequence[int], b: Sequence[int], shift: int) -> float | None:
    """Mean Hamming fraction between a[i] and b[i + shift] over the overlap, or None when the
    overlap is too short."""
    start = max(0, -shift)
    stop = min(len(a), len(b) - shift)
    n = stop - start
    if n <= 0 or n < MIN_OVERLAP * min(len(a), len(b)):
        return None
    total = 0
    for i in range(start, stop):
        total += (a[i] ^ b[i + shift]).bit_count()
    return total / (HASH_BITS * n)


def _video_distance(a: Fingerprint, b: Fingerprint, max_shift: int = MAX_SHIFT) -> float:
    best = 1.0
    pairs = ((a.hashes, b.hashes), (a.crop_hashes, b.hashes), (a.hashes, b.crop_hashes))
    for left, right in pairs:
        for shift in range(-max_shift, max_shift + 1):
            d = _seq_distance(left, right, shift)
            if d is not None and d < best:
                best = d
    return best


def _audio_distance(a: Fingerprint, b: Fingerprint) -> float:
    la, lb = a._levels, b._levels
    best = 1.0
    for shift in range(-AUDIO_MAX_SHIFT, AUDIO_MAX_SHIFT + 1):
        start = max(0, -shift)
        stop = min(len(la), len(lb) - shift)
        n = stop - start
        if n <= 0 or n < MIN_OVERLAP * min(len(la), len(lb)):
            continue
        total = sum(abs(la[i] - lb[i + shift]) for i in range(start, stop))
        best = min(best, total / n / AUDIO_DB_SCALE)
    return best


def distance(a: Fingerprint, b: Fingerprint) -> float:
    """0.0 (same) .. 1.0 (nothing alike; also for different kinds or empty fingerprints) at
    the best time offset. Video: mean Hamming fraction of the frame hashes (unrelated
    pictures sit near 0.5); audio: mean dB difference of the median-removed envelopes / 30."""
    if a.kind != b.kind or not len(a) or not len(b):
        return 1.0
    return _video_distance(a, b) if a.kind == "video" else _audio_distance(a, b)


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """1 - ``distance``: 1.0 the same, 0.0 nothing alike."""
    return 1.0 - distance(a, b)


def threshold_for(kind: Kind) -> float:
    """The near-duplicate distance threshold for ``kind``."""
    return VIDEO_THRESHOLD if kind == "video" else AUDIO_THRESHOLD


def is_near_duplicate(a: Fingerprint, b: Fingerprint) -> bool:
    """True when ``b`` is a re-encoded, resized, cropped (~10% a side) or brightened copy of
    ``a`` (or the other way round): ``distance`` at most ``VIDEO_THRESHOLD`` (video) or
    ``AUDIO_THRESHOLD`` (audio)."""
    if a.kind != b.kind:
        return False
    return distance(a, b) <= threshold_for(a.kind)


# ---- the index ---------------------------------------------------------------------------


def _audio_hashes(fp: Fingerprint) -> list[tuple[int, int]]:
    """(position, 1-D dHash of the 65 levels from there) every AUDIO_HOP samples."""
    env = fp.envelope
    out = []
    for pos in range(0, max(1, len(env) - 64), AUDIO_HOP):
        window = env[pos : pos + 65]
        if len(window) < 17:
            break
        value = 0
        for i in range(len(window) - 1):
            value = (value << 1) | (window[i] > window[i + 1])  # level rises (bytes fall)
        out.append((pos, value & _MASK64))
    return out


def _grid(fp: Fingerprint, stride: int, max_keyframes: int) -> list[tuple[int, int]]:
    """(position, hash) of the key frames: every ``stride``-th sample from the start, both the
    whole-frame and the central hash for video."""
    if fp.kind == "audio":
        return _audio_hashes(fp)[:max_keyframes]
    positions = range(0, min(len(fp.hashes), stride * max_keyframes), stride)
    return [(p, h) for p in positions for h in (fp.hashes[p], fp.crop_hashes[p])]


def _band_keys(kind: Kind, hashes: Iterable[int]) -> set[int]:
    """The bucket keys of ``hashes``: kind, band number and the band's 16 bits."""
    bits = HASH_BITS if kind == "video" else 64
    tag = _KINDS[kind] << 20
    keys = set()
    for h in hashes:
        ones = h.bit_count()
        if ones <= 3 or ones >= bits - 3:
            continue  # flat pictures and silence: no information, huge buckets
        for band in range(bits // 16):
            keys.add(tag | (band << 16) | ((h >> (16 * band)) & 0xFFFF))
    return keys


def _keyframe_distance(a: Fingerprint, b: Fingerprint, stride: int, max_keyframes: int) -> float:
    """A cheap ``distance`` for video: only ``a``'s frames on the key-frame grid, against
    ``b``'s frames at each offset."""
    if a.kind != "video":
        return distance(a, b)
    positions = range(0, min(len(a.hashes), stride * max_keyframes), stride)
    best = 1.0
    pairs = ((a.hashes, b.hashes), (a.crop_hashes, b.hashes), (a.hashes, b.crop_hashes))
    for left, right in pairs:
        for shift in range(-MAX_SHIFT, MAX_SHIFT + 1):
            used = [p for p in positions if 0 <= p + shift < len(right)]
            if not used:
                continue
            total = sum((left[p] ^ right[p + shift]).bit_count() for p in used)
            best = min(best, total / (HASH_BITS * len(used)))
    return best


class FingerprintIndex:
    """Near-duplicate search over many fingerprints (multi-index hashing, see the module doc).

    ``add(key, fp)``, ``remove(key)``, ``query(fp, limit)`` -> [(key, similarity)] best first,
    only near-duplicates; ``to_rows()``/``from_rows()`` for storing in a database.
    """

    def __init__(
        self, *, stride: int = 2, max_keyframes: int = 8, max_bucket: int = 20_000
    ) -> None:
        self.stride = stride  # video key frames every `stride` samples (1 s at 2 fps)
        self.max_keyframes = max_keyframes
        self.max_bucket = max_bucket
        self._buckets: dict[int, array[int]] = {}
        self._fps: dict[int, Fingerprint] = {}
        self._keys: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._fps)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def get(self, key: str) -> Fingerprint | None:
        """The fingerprint stored under ``key``, if any."""
        fid = self._ids.get(key)
        return None if fid is None else self._fps[fid]

    def _index_keys(self, fp: Fingerprint) -> set[int]:
        grid = _grid(fp, self.stride, self.max_keyframes)
        return _band_keys(fp.kind, (h for _, h in grid))

    def add(self, key: str, fp: Fingerprint) -> None:
        """Index ``fp`` under ``key`` (replacing what ``key`` held)."""
        if key in self._ids:
            self.remove(key)
        fid = self._next
        self._next += 1
        self._fps[fid] = fp
        self._keys[fid] = key
        self._ids[key] = fid
        buckets = self._buckets
        for band_key in self._index_keys(fp):
            bucket = buckets.get(band_key)
            if bucket is None:
                buckets[band_key] = array("I", (fid,))
            else:
                bucket.append(fid)

    def remove(self, key: str) -> None:
        """Forget ``key``; KeyError when it is not indexed."""
        fid = self._ids.pop(key)
        fp = self._fps.pop(fid)
        del self._keys[fid]
        for band_key in self._index_keys(fp):
            bucket = self._buckets.get(band_key)
            if bucket is not None:
                bucket.remove(fid)
                if not bucket:
                    del self._buckets[band_key]

    def query(
        self, fp: Fingerprint, limit: int = 10, *, threshold: float | None = None
    ) -> list[tuple[str, float]]:
        """The indexed near-duplicates of ``fp`` as (key, similarity), most similar first, at
        most ``limit``. ``threshold`` overrides the kind's near-duplicate distance."""
        if limit <= 0 or not len(fp):
            return []
        limit_d = threshold_for(fp.kind) if threshold is None else threshold
        counts: Counter[int] = Counter()
        for band_key in self._index_keys(fp):
            bucket = self._buckets.get(band_key)
            if bucket is not None and len(bucket) <= self.max_bucket:
                counts.update(bucket)
        found: list[tuple[float, str]] = []
        for fid, _ in counts.most_common(max(4 * limit, 32)):
            other = self._fps[fid]
            if other.kind != fp.kind:
                continue
            quick = _keyframe_distance(fp, other, self.stride, self.max_keyframes)
            if quick > limit_d + 0.08:
                continue
            d = distance(fp, other)
            if d <= limit_d:
                found.append((d, self._keys[fid]))
        found.sort()
        return [(key, 1.0 - d) for d, key in found[:limit]]

    def to_rows(self) -> Iterator[tuple[str, bytes]]:
        """(key, ``Fingerprint.to_bytes()``) for every indexed fingerprint."""
        for fid, fp in self._fps.items():
            yield self._keys[fid], fp.to_bytes()

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, bytes]], **options: int) -> FingerprintIndex:
        """An index of the (key, bytes) rows ``to_rows`` wrote."""
        index = cls(**options)
        for key, data in rows:
            index.add(key, Fingerprint.from_bytes(data))
        return index
