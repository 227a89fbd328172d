"""What the crash campaign feeds the daemon: generated files, CAR files, clips and a recipe.

Everything is derived from one seeded :class:`random.Random`, so a campaign's inputs are the
same bytes on every run with the same seed. Sizes are small (most files a few KiB, a few of
some MiB) so that a hundred kill-restart-verify cycles stay within minutes: ``artdag verify``
re-hashes the whole store after every restart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio

import dag
from dag import FlatFsBlockstore, ImportParams, cid_to_str
from tests.harness.media import make_video

__all__ = ["CarFile", "InputFile", "Inputs", "make_inputs"]

KIB, MIB = 1 << 10, 1 << 20

RECIPE = """\
# The crash campaign's render: change a 1 s, 160x90 clip's speed (factor set per render).
name: crash-speed
inputs: [clip]
nodes:
  fast:
    effect: speed
    input: clip
    params: {factor: 2}
output: fast
"""


@dataclass(frozen=True)
class InputFile:
    path: Path
    name: str
    size: int


@dataclass(frozen=True)
class CarFile:
    path: Path
    root: str  # the CAR's single root, as artdag prints it


@dataclass
class Inputs:
    """The pools the workload draws from; files are written as they are first needed."""

    root: Path
    rng: random.Random
    cars: list[CarFile]
    clips: list[Path]
    recipe: Path
    clip_cids: list[str] = field(default_factory=list)  # the clips once added to the node
    made: int = 0

    def new_file(self) -> InputFile:
        """A fresh file of random bytes: 70% up to 64 KiB, 25% up to 1.5 MiB, 5% 2-4 MiB."""
        self.made += 1
        roll = self.rng.random()
        if roll < 0.70:
            size = self.rng.randint(1, 64 * KIB)
        elif roll < 0.95:
            size = self.rng.randint(64 * KIB, 3 * MIB // 2)
        else:
            size = self.rng.randint(2 * MIB, 4 * MIB)
        name = f"f{self.made:05d}.bin"
        path = self.root / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.rng.randbytes(size))
        return InputFile(path, name, size)


async def _make_cars(root: Path, rng: random.Random, count: int) -> list[CarFile]:
    """``count`` CARs of one UnixFS file each (16-256 KiB chunks, so most hold several
    blocks), built with the dag package in a scratch store of their own."""
    store = FlatFsBlockstore(root / "car-source", sync="never")
    out: list[CarFile] = []
    try:
        for i in range(count):
            data = rng.randbytes(rng.randint(1, 1536) * KIB)
            params = ImportParams(chunk_size=rng.choice((16, 64, 256)) * KIB)
            source = root / "car-source" / f"c{i:03d}.bin"
            source.write_bytes(data)
            result = await dag.import_file(store, source, params)
            path = root / "cars" / f"c{i:03d}.car"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                async for piece in dag.iter_car(store, [result.cid]):
                    f.write(piece)
            out.append(CarFile(path, cid_to_str(result.cid)))
    finally:
        await store.aclose()
    return out


async def make_inputs(root: Path, seed: int, *, cars: int = 12, clips: int = 2) -> Inputs:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    car_files = await _make_cars(root, rng, cars)
    colours = ("red", "blue", "green", "yellow")
    clip_paths = []
    for i in range(clips):
        path = root / f"clip{i}.mp4"
        make = partial(make_video, path, 1, "160x90", 10, container="mp4")
        await trio.to_thread.run_sync(partial(make, colour=colours[i % len(colours)]))
        clip_paths.append(path)
    recipe = root / "crash-speed.yaml"
    recipe.write_text(RECIPE)
    return Inputs(root, rng, car_files, clip_paths, recipe)
