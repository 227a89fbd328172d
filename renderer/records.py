"""Builders for the renderer's records: step receipts and the provenance of a render.

(Effect records are built in :mod:`renderer.effects`, recipe records by
:meth:`renderer.recipes.Recipe.to_record`.) Every builder returns an unsigned record that
already passes :func:`provenance.validate_record`; the caller signs it.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from dag import CID
from provenance import make_provenance_record, utc_timestamp, validate_record

__all__ = [
    "hardware_description",
    "make_receipt_record",
    "make_render_provenance",
    "software_versions",
]


def make_receipt_record(
    *,
    cache_id: CID,
    operation: str,
    effect: CID,
    params: Mapping[str, Any],
    inputs: Iterable[CID],
    output: CID,
    content_key: str,
    milliseconds: int,
    frames: int,
    renderer: str,
    fused: Iterable[CID] = (),
    created: str | None = None,
) -> dict[str, Any]:
    """A ``receipt``: the step ``cache_id`` (``operation`` on ``inputs``) gave ``output``."""
    record: dict[str, Any] = {
        "type": "receipt",
        "version": 1,
        "cache_id": cache_id,
        "operation": operation,
        "effect": effect,
        "params": dict(params),
        "inputs": list(inputs),
        "output": output,
        "content_key": content_key,
        "milliseconds": max(0, int(milliseconds)),
        "frames": max(0, int(frames)),
        "renderer": renderer,
        "created": created or utc_timestamp(),
    }
    fused = list(fused)
    if fused:
        record["fused"] = fused
    validate_record(record)
    return record


@functools.cache
def software_versions() -> dict[str, str]:
    """What rendered: artdag's version, the ffmpeg build and the Python that ran it."""
    from .ffmpeg_build import ffmpeg_version

    try:
        artdag = version("artdag")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        artdag = "unknown"
    return {
        "artdag": artdag,
        "ffmpeg": ffmpeg_version()[:128],
        "python": platform.python_version(),
    }


@functools.cache
def hardware_description() -> str:
    """The machine that rendered: OS, architecture and CPU model (one line, <= 128 chars)."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor()
    text = f"{platform.system()} {platform.machine()}; {model or 'unknown CPU'}"
    return " ".join(text.split())[:128]


def make_render_provenance(
    *,
    output: CID,
    inputs: Iterable[CID],
    effects: Iterable[CID],
    recipe: CID,
    parameters: Mapping[str, Any],
    steps: Iterable[CID],
    renderer: str,
    infrastructure: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``provenance`` record of a render's output (``infrastructure``: the volunteers
    whose receipts were accepted for its steps)."""
    return make_provenance_record(
        output=output,
        inputs=list(dict.fromkeys(inputs)),
        effects=list(dict.fromkeys(effects)),
        recipe=recipe,
        parameters=dict(parameters),
        steps=list(steps),
        software=software_versions(),
        node=hardware_description(),
        renderer=renderer,
        infrastructure=list(infrastructure) or None,
    )
