"""Garbage collection's building blocks: what a collection reports (:class:`GcReport`), the size
of a DAG (:class:`DagSize`) and of a store (:class:`StoreUsage`), and the marking of every block
reachable from a set of roots.

The walks are sans-I/O generators: :func:`mark_steps` and :func:`measure_steps` yield the CID
of each block they need and receive its bytes (or ``None`` when the store lacks it), so the
flat-file store drives them synchronously inside its single collection thread (reading files
directly; :func:`drive_sync`) and the generic :meth:`dag.Blockstore.measure` drives the very
same code with awaits (:func:`drive_async`). Raw blocks have no links, so the mark never reads
them and the measure only asks for their size (a driver may answer a raw CID with an ``int``).
Both walks go on past missing blocks (a partly fetched DAG keeps what it has).

How :meth:`dag.FlatFsBlockstore.collect_garbage` stays safe while the daemon serves requests:

1. **One at a time.** An in-process lock plus an ``flock`` on ``<store>/gc.lock`` (so the CLI
   and the daemon never sweep together); a second call waits for the first.
2. **Mark.** Under the store's sweep lock a collection flag is raised and the held roots are
   snapshot; then every pin (read from ``pins.db`` after the flag is up), every ``keep`` root
   and every held root is walked recursively, and direct pins and ``keep_shallow`` mark their
   block only. Everything runs in *one* worker thread.
3. **Grace.** The start time is read from the file system's own clock (the mtime of
   ``gc.lock`` touched at the start, so it is comparable with block mtimes at the same
   granularity); an unmarked block whose mtime is at or after ``start - grace_s`` is kept: a
   write in progress, an import not yet pinned, a block stored by another process. A put of a
   block that already exists refreshes its mtime, so re-added old blocks count as young.
4. **Holds and pins made during the collection.** ``hold(*roots)`` and ``pin()`` register their
   root under the sweep lock; while a collection runs, the root is also queued for it. The
   sweep deletes in small batches, each *under the sweep lock*, and before each batch, under
   that lock, it checks the queue: if roots are waiting it releases the lock, marks them
   (walking, tolerant of missing blocks) and checks again; it deletes only when the queue is
   empty, without releasing the lock in between. So once ``hold()``'s ``with`` has been
   entered (or ``pin()`` has returned), no block reachable from that root is removed by a
   collection, running or later. The one gap: a block missing when its root was marked and
   written afterwards is young (kept), but its children that were already stored are not
   reachable through it at mark time and may go if old (the gateway fetches them again).
5. **No race with a re-put.** Each deletion re-stats the file under the sweep lock, and the
   dedup path of ``put`` refreshes the mtime under the same lock, so a block is either seen
   young or deleted before the put, which then writes it again.
6. **Crash safety.** A collection only unlinks block files; it never writes ``pins.db``. A
   crash mid-sweep leaves fewer unreachable blocks, nothing else.

Holds are in-process: another process (the CLI) is protected by the grace period only, and a
pin made by another process during a collection only if its blocks are young.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from multiformats import CID

from .cids import cid_to_str, multihash_key
from .errors import CodecError, StoreError
from .links import links_of

__all__ = [
    "BlockAnswer",
    "DagSize",
    "GcReport",
    "MarkSet",
    "StoreUsage",
    "drive_async",
    "drive_sync",
    "mark_steps",
    "measure_steps",
]

T = TypeVar("T")
BlockAnswer = bytes | int | None
"""A driver's answer to a yielded CID: the block's bytes; for a raw CID its size is enough;
None when the store lacks the block."""
Steps = Generator[CID, BlockAnswer, T]


@dataclass(slots=True)
class GcReport:
    """What one collection did: block files ``examined``, of which ``marked`` (reachable),
    ``removed`` (``freed_bytes`` in all) and ``kept_young`` (unreachable but within the grace
    period); ``seconds`` of wall time."""

    examined: int = 0
    marked: int = 0
    removed: int = 0
    freed_bytes: int = 0
    kept_young: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass(slots=True)
class DagSize:
    """Blocks and bytes of a DAG present locally; ``missing``: blocks reached but not held."""

    blocks: int = 0
    bytes: int = 0
    missing: int = 0


@dataclass(slots=True)
class StoreUsage:
    """Every block a store holds and their bytes (block sizes, not disk blocks)."""

    blocks: int = 0
    bytes: int = 0


@dataclass(slots=True)
class MarkSet:
    """The multihash keys found reachable (``keys``) and those whose links were followed.

    Two sets because a block is marked through a raw CID without being read, and the same
    multihash may be linked elsewhere as dag-pb or dag-cbor, whose links must still be followed.
    """

    keys: set[bytes] = field(default_factory=set)
    expanded: set[bytes] = field(default_factory=set)
    missing: int = 0


def mark_steps(marks: MarkSet, roots: Iterable[CID], *, recursive: bool = True) -> Steps[None]:
    """Mark every block reachable from ``roots`` (only the roots themselves if not
    ``recursive``), yielding each non-raw CID whose bytes are needed. A missing block is
    counted and passed over; a block whose links cannot be read raises StoreError, because
    what lies below it cannot be marked."""
    stack = list(roots)
    stack.reverse()
    while stack:
        cid = stack.pop()
        key = multihash_key(cid)
        marks.keys.add(key)
        if not recursive or cid.codec.name == "raw" or key in marks.expanded:
            continue
        marks.expanded.add(key)
        data = yield cid
        if data is None:
            marks.missing += 1
            continue
        if not isinstance(data, bytes):
            raise TypeError(f"mark needs the bytes of {cid_to_str(cid)}, got {data!r}")
        try:
            links = links_of(cid, data)
        except CodecError as exc:
            raise StoreError(
                f"garbage collection stopped: cannot follow the links of reachable block "
                f"{cid_to_str(cid)} ({exc}); run `artdag verify --repair` or unpin it"
            ) from None
        links.reverse()
        stack.extend(links)


def measure_steps(root: CID, *, recursive: bool, seen: set[bytes]) -> Steps[DagSize]:
    """Size the DAG under ``root`` (the root block only if not ``recursive``), counting only
    blocks whose multihash key is not in ``seen`` and adding them to it. Missing blocks are
    counted in ``missing``; a block whose links cannot be read counts as a leaf."""
    size = DagSize()
    stack = [root]
    while stack:
        cid = stack.pop()
        key = multihash_key(cid)
        if key in seen:
            continue
        seen.add(key)
        data = yield cid
        if data is None:
            size.missing += 1
            continue
        size.blocks += 1
        if isinstance(data, int):
            size.bytes += data
            continue
        size.bytes += len(data)
        if recursive:
            try:
                links = links_of(cid, data)
            except CodecError:
                continue
            links.reverse()
            stack.extend(links)
    return size


def drive_sync(steps: Steps[T], read: Callable[[CID], BlockAnswer]) -> T:
    """Run a walk, answering each CID it yields with ``read(cid)``."""
    try:
        cid = next(steps)
        while True:
            cid = steps.send(read(cid))
    except StopIteration as stop:
        return stop.value


async def drive_async(steps: Steps[T], read: Callable[[CID], Awaitable[BlockAnswer]]) -> T:
    """Run a walk, answering each CID it yields with ``await read(cid)``."""
    try:
        cid = next(steps)
        while True:
            cid = steps.send(await read(cid))
    except StopIteration as stop:
        return stop.value
