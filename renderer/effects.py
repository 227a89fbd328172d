"""The built-in effects: what each one takes, its parameters with types and ranges, and its record.

An effect is data (name, release, inputs, output kind, parameter schema, author); how it runs is
in :mod:`renderer.effect_graphs` (ffmpeg filter graphs) and :mod:`renderer.executor` (the
non-ffmpeg ones: ``identity``, ``dog``, ``analyze-beats``).

Built-in effect records are authored by one fixed, well-known identity, :data:`BUILTIN_AUTHOR`,
whose Ed25519 seed is the SHA-256 of a public string. Ed25519 signatures are deterministic and
the records carry no timestamp, so every machine derives byte-identical records and the same
CIDs. Anyone can sign with that key, so a node recognises a built-in by its CID (the table
here), never by its signer; the key only gives the records a well-formed, verifiable author.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dag import CID, cid_to_str, parse_cid, record_block
from provenance import Identity, sign_record, validate_record

from .errors import RenderError
from .params import ParamSpec

__all__ = [
    "BUILTIN_AUTHOR",
    "BUILTIN_EFFECTS",
    "Effect",
    "UnknownEffect",
    "effect_by_cid",
    "effect_by_name",
    "effect_cid",
    "effect_record",
]

BUILTIN_AUTHOR = Identity.from_seed(hashlib.sha256(b"artdag built-in effects v1").digest())

MEDIA, BEATS = "media", "beats"
_SEED = ParamSpec("int", "seed of the random number generator", 0, 0, 2**31 - 1)


@dataclass(frozen=True)
class Effect:
    name: str
    release: int
    description: str
    inputs: tuple[tuple[str, str], ...]  # (input name, kind)
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    output: str = MEDIA
    variadic: bool = False  # the last input may repeat (and must appear at least once)
    runs: str = "graph"  # graph (ffmpeg filter graph) | passthrough | analysis

    def defaults(self) -> dict[str, Any]:
        return {k: s.default for k, s in self.params.items() if s.default is not None}


class UnknownEffect(RenderError, LookupError):
    """No effect of that name or CID."""


def _p(type_: str, doc: str, default: Any = None, lo: Any = None, hi: Any = None) -> ParamSpec:
    return ParamSpec(type_, doc, default, lo, hi)


_ONE = (("input", MEDIA),)
_BUILTINS = [
    Effect("identity", 1, "Returns its input unchanged (no rendering).", _ONE, runs="passthrough"),
    Effect(
        "dog",
        1,
        "Ignores its input and returns a configured asset (no rendering).",
        _ONE,
        {"asset": _p("cid", "CID of the asset to return")},
        runs="passthrough",
    ),
    Effect(
        "glitch",
        1,
        "Digital damage: temporal noise, RGB channel shift and a lagging after-image.",
        _ONE,
        {
            "noise": _p("int", "noise strength (0 = none)", 30, 0, 100),
            "shift": _p("int", "horizontal red/blue channel shift in pixels", 6, -64, 64),
            "decay": _p("float", "after-image decay (0 = off, towards 1 = long trails)", 0.0, 0, 1),
            "seed": _SEED,
        },
    ),
    Effect(
        "resize",
        1,
        "Scales the picture to an exact size (square pixels).",
        _ONE,
        {
            "width": _p("int", "width in pixels", None, 16, 7680),
            "height": _p("int", "height in pixels", None, 16, 4320),
        },
    ),
    Effect(
        "rotate",
        1,
        "Rotates the picture; multiples of 90 degrees turn the frame, others rotate in place.",
        _ONE,
        {"degrees": _p("float", "clockwise angle in degrees", 90.0, -360, 360)},
    ),
    Effect(
        "crop",
        1,
        "Cuts a rectangle out of the picture.",
        _ONE,
        {
            "x": _p("int", "left edge in pixels", 0, 0, 7680),
            "y": _p("int", "top edge in pixels", 0, 0, 4320),
            "width": _p("int", "width in pixels", None, 16, 7680),
            "height": _p("int", "height in pixels", None, 16, 4320),
        },
    ),
    Effect(
        "segment",
        1,
        "Keeps a stretch of time (video and audio), starting at zero.",
        _ONE,
        {
            "start": _p("float", "start in seconds", 0.0, 0, 86400),
            "duration": _p("float", "length in seconds", None, 0.04, 86400),
        },
    ),
    Effect(
        "sequence",
        1,
        "Plays its inputs one after another (sizes follow the first clip; audio is kept only "
        "if every clip has some). Planned as a balanced tree of two-clip joins.",
        (("clips", MEDIA),),
        variadic=True,
    ),
    Effect(
        "blend",
        1,
        "Mixes two pictures pixel by pixel (the second is scaled to the first's size).",
        (("base", MEDIA), ("top", MEDIA)),
        {
            "mode": ParamSpec(
                "string",
                "blend mode",
                "average",
                choices=(
                    "average",
                    "addition",
                    "multiply",
                    "screen",
                    "overlay",
                    "difference",
                    "lighten",
                    "darken",
                ),
            ),
            "opacity": _p("float", "strength of the blend", 0.5, 0, 1),
        },
    ),
    Effect(
        "layer",
        1,
        "Lays the second picture (scaled) over the first at a position; sound from the first.",
        (("base", MEDIA), ("top", MEDIA)),
        {
            "x": _p("int", "left edge of the layer in pixels", 0, 0, 7680),
            "y": _p("int", "top edge of the layer in pixels", 0, 0, 4320),
            "scale": _p("float", "size of the layer relative to its own size", 1.0, 0.05, 4),
        },
    ),
    Effect(
        "mux",
        1,
        "Pictures from the first input, sound from the second (cut or padded to the video).",
        (("video", MEDIA), ("audio", MEDIA)),
    ),
    Effect(
        "speed",
        1,
        "Plays faster or slower (audio keeps its pitch).",
        _ONE,
        {"factor": _p("float", "speed factor (2 = twice as fast)", 2.0, 0.25, 4)},
    ),
    Effect(
        "colour",
        1,
        "Brightness, contrast, saturation and hue.",
        _ONE,
        {
            "brightness": _p("float", "added brightness", 0.0, -1, 1),
            "contrast": _p("float", "contrast factor", 1.0, 0, 3),
            "saturation": _p("float", "saturation factor (0 = grey)", 1.0, 0, 3),
            "hue": _p("float", "hue rotation in degrees", 0.0, -180, 180),
        },
    ),
    Effect(
        "gain",
        1,
        "Changes the loudness of the sound.",
        _ONE,
        {"db": _p("float", "gain in decibels", 0.0, -60, 24)},
    ),
    Effect(
        "fade",
        1,
        "Fades the sound (and optionally the picture) in at the start and out at the end.",
        _ONE,
        {
            "fade_in": _p("float", "fade-in length in seconds", 0.5, 0, 60),
            "fade_out": _p("float", "fade-out length in seconds", 0.5, 0, 60),
            "video": _p("bool", "fade the picture to and from black too", False),
        },
    ),
    Effect(
        "analyze-beats",
        1,
        "Finds the beats in the sound; the result is a DAG-CBOR record of beat times.",
        _ONE,
        {
            "sensitivity": _p("float", "onset threshold over the local mean energy", 1.5, 1, 10),
            "min_gap": _p("float", "shortest time between two beats in seconds", 0.2, 0.05, 2),
        },
        output=BEATS,
        runs="analysis",
    ),
    Effect(
        "beat-cut",
        1,
        "Cuts the video into slices between beats and plays them in a seeded random order.",
        (("video", MEDIA), ("beats", BEATS)),
        {
            "seed": _SEED,
            "slices": _p("int", "how many slices to keep (0 = all)", 0, 0, 1000),
            "shuffle": _p("bool", "shuffle the slices (false keeps their order)", True),
        },
    ),
]
BUILTIN_EFFECTS: Mapping[str, Effect] = {e.name: e for e in _BUILTINS}


@cache
def effect_record(name: str) -> dict[str, Any]:
    """The signed record of a built-in effect (the same bytes on every machine)."""
    effect = effect_by_name(name)
    record: dict[str, Any] = {
        "type": "effect",
        "version": 1,
        "name": effect.name,
        "release": effect.release,
        "description": effect.description,
        "inputs": [{"name": n, "kind": k} for n, k in effect.inputs],
        "output": effect.output,
        "params": {k: s.to_record() for k, s in effect.params.items()},
        "author": BUILTIN_AUTHOR.did,
    }
    if effect.variadic:
        record["variadic"] = True
    validate_record(record)
    return sign_record(record, BUILTIN_AUTHOR)


@cache
def effect_cid(name: str) -> CID:
    return record_block(effect_record(name)).cid


@cache
def _by_cid() -> dict[str, Effect]:
    return {cid_to_str(effect_cid(name)): e for name, e in BUILTIN_EFFECTS.items()}


def effect_by_name(name: str) -> Effect:
    try:
        return BUILTIN_EFFECTS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_EFFECTS))
        raise UnknownEffect(f"unknown effect {name!r} (known: {known})") from None


def effect_by_cid(cid: CID | str) -> Effect:
    key = cid_to_str(parse_cid(cid))
    try:
        return _by_cid()[key]
    except KeyError:
        raise UnknownEffect(f"unknown effect {key} (not a built-in effect record)") from None
