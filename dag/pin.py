"""A pinned CID (:class:`Pin`), as every store lists it.

Plain data below the stores and the walkers that read pins (:mod:`dag.completeness`,
:mod:`dag.pin_table`), so that none of them imports :mod:`dag.blockstore` to name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from multiformats import CID

__all__ = ["Pin"]


@dataclass(frozen=True, slots=True)
class Pin:
    """A pinned CID: recursive if any of its reasons pins it recursively; ``reasons`` are
    the names in :data:`dag.pin_table.PIN_REASONS`, sorted."""

    cid: CID
    recursive: bool = True
    reasons: tuple[str, ...] = ("local",)
