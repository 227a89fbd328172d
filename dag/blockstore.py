"""The blockstore interface every backend implements (embedded flat files, a Kubo node, ...).

All methods are async so that a network-backed store (Kubo's RPC API over httpx) and the
embedded one (blocking file I/O pushed to worker threads) look the same to the layers above.
A store only ever receives :class:`~dag.cids.Block` objects, whose bytes are known to match
their CID, and re-verifies what it reads back.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from multiformats import CID

from .cids import Block
from .completeness import IncompletePin, completeness_steps
from .errors import BlockCorrupt, BlockNotFound, CidError, StoreError
from .gc import DagSize, GcReport, StoreUsage, drive_async, measure_steps
from .pin import Pin

__all__ = ["Blockstore", "Pin", "VerifyReport"]


@dataclass(slots=True)
class VerifyReport:
    """``checked`` blocks re-hashed, of which ``bad`` did not match; ``pins_checked`` pins
    walked, of which ``incomplete`` lack blocks (:mod:`dag.completeness`)."""

    checked: int = 0
    bad: list[str] = field(default_factory=list)
    pins_checked: int = 0
    incomplete: list[IncompletePin] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.incomplete

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "bad": list(self.bad),
            "pins_checked": self.pins_checked,
            "incomplete_pins": [pin.to_json() for pin in self.incomplete],
        }


class Blockstore(ABC):
    """Content-addressed block storage with pins."""

    @abstractmethod
    async def put(self, block: Block) -> None:
        """Store a block (a no-op if it is already there)."""

    async def put_many(self, blocks: list[Block]) -> None:
        for block in blocks:
            await self.put(block)

    @abstractmethod
    async def get(self, cid: CID) -> bytes:
        """The block's bytes, verified against ``cid``; raise BlockNotFound or BlockCorrupt."""

    @abstractmethod
    async def has(self, cid: CID) -> bool: ...

    @abstractmethod
    async def delete(self, cid: CID) -> None:
        """Remove a block if present."""

    @abstractmethod
    def cids(self) -> AsyncIterator[CID]:
        """Every block held (as CIDv1; raw codec where the store only knows the multihash)."""

    @abstractmethod
    async def pin(self, cid: CID, *, recursive: bool = True, reason: str = "local") -> None:
        """Pin ``cid`` for ``reason`` (another reason's pin on the same CID is kept)."""

    @abstractmethod
    async def unpin(self, cid: CID, *, reason: str | None = None) -> None:
        """Drop the pin's ``reason`` (every reason if None); the CID stays pinned while any
        reason remains. Unpinning what is not pinned is a no-op."""

    @abstractmethod
    async def pins(self) -> list[Pin]:
        """One :class:`Pin` per pinned CID, oldest first."""

    async def flush(self) -> None:
        """Make every block written so far durable (fsync); called before records refer to them."""
        return None

    @abstractmethod
    async def verify(self) -> VerifyReport:
        """Re-hash every block and report those whose bytes no longer match; then walk every
        pin (:meth:`check_pins`) and report those whose DAG lacks blocks."""

    async def check_pins(self) -> tuple[int, list[IncompletePin]]:
        """(pins walked, the incomplete ones): each recursive pin's whole DAG, each direct
        pin's block. A block that fails its hash counts as missing here."""
        pins = await self.pins()

        async def read(cid: CID) -> bytes | None:
            try:
                return await self.get(cid)
            except (BlockNotFound, BlockCorrupt, CidError):
                return None

        return len(pins), await drive_async(completeness_steps(pins), read)

    async def aclose(self) -> None:
        """Release resources (HTTP clients, database handles)."""
        return None

    # -- garbage collection and sizes (see dag.gc) -----------------------------------------
    def hold(self, *roots: CID) -> contextlib.AbstractContextManager[None]:
        """While the ``with`` block runs, garbage collection in this process keeps every block
        reachable from ``roots``, even a collection already under way. Thread-safe, nestable
        (a count per root). The base class holds nothing (its store has no collector here)."""
        return contextlib.nullcontext()

    async def collect_garbage(
        self,
        *,
        keep: Iterable[CID] = (),
        keep_shallow: Iterable[CID] = (),
        grace_s: float = 600.0,
    ) -> GcReport:
        """Remove every block not reachable from a pin, from ``keep`` (recursively), from
        ``keep_shallow`` (the block only) or from a held root, unless it is younger than
        ``grace_s`` seconds. One collection at a time; a second call waits."""
        raise StoreError(f"{type(self).__name__} cannot collect garbage")

    async def measure(
        self, root: CID, *, recursive: bool = True, seen: set[bytes] | None = None
    ) -> DagSize:
        """Blocks and bytes of the DAG under ``root`` held locally (the root block only if not
        ``recursive``), counting only blocks whose multihash key is not yet in ``seen`` (and
        adding them); missing blocks are counted in ``missing``, never raised."""
        steps = measure_steps(root, recursive=recursive, seen=set() if seen is None else seen)
        return await drive_async(steps, self._block_or_none)

    async def usage(self) -> StoreUsage:
        """Every block held and their bytes (the base class reads each block)."""
        usage = StoreUsage()
        async for cid in self.cids():
            data = await self._block_or_none(cid)
            if data is not None:
                usage.blocks += 1
                usage.bytes += len(data)
        return usage

    async def _block_or_none(self, cid: CID) -> bytes | None:
        try:
            return await self.get(cid)
        except BlockNotFound:
            return None
