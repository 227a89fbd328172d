"""Whether every pinned DAG is whole: which pins lack which blocks.

Re-hashing every block (the other half of ``artdag verify``) finds blocks whose bytes went bad,
but not blocks that are gone: a block file deleted by hand, by a failed import's rollback in
earlier versions, or by a collection that missed a pin. Only a walk from each pin finds those.

:func:`completeness_steps` is a sans-I/O walk like :mod:`dag.gc`'s: it yields the CID of each
block it needs and receives its bytes, its size (enough for a raw block, which has no links) or
``None`` when the store lacks it. A recursive pin is walked to the bottom, a direct pin checks
its root block only. Sub-DAGs found whole under one recursive pin are not walked again under
another, so pins that share most of their blocks (the heads of one repo chain) cost one walk.
A missing block's own links cannot be known, so what lies below it is not counted.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from multiformats import CID

from .cids import cid_to_str, multihash_key
from .errors import CodecError
from .links import links_of
from .pin import Pin

__all__ = ["MAX_LISTED", "IncompletePin", "completeness_steps"]

MAX_LISTED = 100
"""Missing blocks named per pin; ``missing_count`` has them all."""

BlockAnswer = bytes | int | None
_Key = tuple[bytes, bool]  # (multihash, read as raw): a raw view of a block is not expanded


@dataclass(frozen=True, slots=True)
class IncompletePin:
    """A pin whose DAG is not all here: the first :data:`MAX_LISTED` ``missing`` blocks (of
    ``missing_count``) and the held blocks whose links cannot be read (``unreadable``)."""

    cid: CID
    recursive: bool
    missing: tuple[CID, ...]
    missing_count: int
    unreadable: tuple[CID, ...] = ()

    def describe(self) -> str:
        kind = "recursive" if self.recursive else "direct"
        parts = []
        if self.missing_count:
            shown = ", ".join(cid_to_str(cid) for cid in self.missing)
            more = self.missing_count - len(self.missing)
            parts.append(
                f"missing {self.missing_count} block{'s' if self.missing_count != 1 else ''}: "
                + shown
                + (f" and {more} more" if more else "")
            )
        if self.unreadable:
            shown = ", ".join(cid_to_str(cid) for cid in self.unreadable)
            parts.append(f"cannot read the links of {shown}")
        return f"pin {cid_to_str(self.cid)} ({kind}) is incomplete: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": cid_to_str(self.cid),
            "recursive": self.recursive,
            "missing": [cid_to_str(cid) for cid in self.missing],
            "missing_count": self.missing_count,
            "unreadable": [cid_to_str(cid) for cid in self.unreadable],
        }


def completeness_steps(pins: list[Pin]) -> Generator[CID, BlockAnswer, list[IncompletePin]]:
    """Walk each pin's DAG (its root only for a direct pin); return the incomplete pins."""
    whole: set[_Key] = set()  # blocks whose every descendant was found, across pins
    incomplete: list[IncompletePin] = []
    for pin in pins:
        missing: list[CID] = []
        unreadable: list[CID] = []
        seen: set[_Key] = set()
        stack = [pin.cid]
        while stack:
            cid = stack.pop()
            key = (multihash_key(cid), cid.codec.name == "raw")
            if key in seen or key in whole:
                continue
            seen.add(key)
            data = yield cid
            if data is None:
                missing.append(cid)
                continue
            if not pin.recursive or not isinstance(data, bytes):
                continue  # a direct pin, or a raw block answered with its size
            try:
                links = links_of(cid, data)
            except CodecError:
                unreadable.append(cid)
                continue
            links.reverse()
            stack.extend(links)
        if missing or unreadable:
            incomplete.append(
                IncompletePin(
                    pin.cid,
                    pin.recursive,
                    tuple(missing[:MAX_LISTED]),
                    len(missing),
                    tuple(unreadable[:MAX_LISTED]),
                )
            )
        elif pin.recursive:
            whole |= seen
    return incomplete
