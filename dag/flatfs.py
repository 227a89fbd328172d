"""The embedded blockstore: one file per block, like Kubo's flatfs.

A block lives at ``blocks/<shard>/<KEY>.data`` where KEY is the base32 multihash (so the same
bytes addressed as raw or dag-pb are stored once) and shard is KEY's next-to-last two
characters. Writes go to a temp file that is renamed into place, so a crash (even ``kill -9``)
leaves either the whole block or none of it; temp files of dead writers are removed on open.
Pins, with their reasons, live in ``pins.db`` (:mod:`dag.pin_table`).

Garbage collection (:meth:`FlatFsBlockstore.collect_garbage`) marks and sweeps in one worker
thread reading the files directly; how it stays safe beside live reads and writes (grace
period, holds, one collection at a time) is told in :mod:`dag.gc`.

Block files are created 0600 and directories 0700: a store is private to its owner.

Durability: ``sync="batch"`` (default) fsyncs the blocks written since the last :meth:`flush`
when flush is called (importers call it before any record refers to the blocks);
``"always"`` fsyncs each block before its rename; ``"never"`` leaves it to the OS.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

import trio
from multiformats import CID

from .blockstore import Blockstore, Pin, VerifyReport
from .cids import Block, check_cid, cid_to_str, identity_data, make_cid, multihash_key
from .completeness import IncompletePin, completeness_steps
from .errors import BlockCorrupt, BlockNotFound, CidError, StoreError
from .gc import (
    BlockAnswer,
    DagSize,
    GcReport,
    MarkSet,
    StoreUsage,
    drive_sync,
    mark_steps,
    measure_steps,
)
from .pin_table import PinTable, check_reason, pins_from_rows

__all__ = ["FlatFsBlockstore"]

SyncMode = Literal["always", "batch", "never"]
_SUFFIX = ".data"


def _key(cid: CID) -> str:
    return base64.b32encode(multihash_key(check_cid(cid))).decode().rstrip("=")


def _key_bytes(key: str) -> bytes:
    return base64.b32decode(key + "=" * (-len(key) % 8))


def _cid_from_key(key: str) -> CID:
    return make_cid(1, "raw", _key_bytes(key))  # CID(...) validates slowly: 250 us a block


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FlatFsBlockstore(Blockstore):
    def __init__(
        self, root: str | os.PathLike[str], *, sync: SyncMode = "batch", hash_on_read: bool = True
    ) -> None:
        """``hash_on_read``: re-hash every block read against its CID (BlockCorrupt on a
        mismatch). Blocks are always checked when written and by :meth:`verify`; turning the
        read check off (Kubo's default, ``Datastore.HashOnRead = false``) doubles the speed of
        streaming large files."""
        self.root = Path(root)
        self.hash_on_read = hash_on_read
        self.blocks_dir = self.root / "blocks"
        self.sync = sync
        self.blocks_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._known_dirs: set[Path] = set()
        self._unsynced: list[Path] = []
        self._lock = threading.Lock()
        self._pins = PinTable(self.root / "pins.db")
        self.removed_temp_files = self._remove_stale_temp_files()
        # garbage collection (dag.gc): the sweep lock guards the holds, the queue of roots a
        # running collection must still mark, every deletion batch and put's dedup path. An
        # RLock: a hold released by a finalizer may run in the collecting thread itself.
        self._sweep_lock = threading.RLock()
        self._holds: dict[CID, int] = {}
        self._collecting = False
        self._late_roots: list[tuple[CID, bool]] = []
        self._gc_lock = trio.Lock()
        self._gc_batch = 256  # deletions per batch: hold() may wait for one batch
        self._before_batch: Callable[[int], None] | None = None  # tests: called per batch

    # -- paths ---------------------------------------------------------------------------
    def path_for(self, cid: CID) -> Path:
        key = _key(cid)
        return self.blocks_dir / key[-3:-1] / (key + _SUFFIX)

    def _remove_stale_temp_files(self) -> int:
        removed = 0
        for tmp in self.blocks_dir.glob("*/.*.tmp"):
            try:
                pid = int(tmp.name.rsplit(".", 3)[-3])
            except (ValueError, IndexError):
                pid = -1
            if pid <= 0 or not _pid_alive(pid):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    # -- sync primitives (run in worker threads) ------------------------------------------
    def _put_sync(self, block: Block) -> None:
        if identity_data(block.cid) is not None:
            return  # the CID holds the block: nothing to write
        path = self.path_for(block.cid)
        if path.exists() and self._refresh_existing(path, len(block.data)):
            return
        directory = path.parent
        if directory not in self._known_dirs:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._known_dirs.add(directory)
        tmp = directory / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(block.data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.sync == "always":
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if self.sync == "always":
                _fsync_path(directory)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write block {cid_to_str(block.cid)}: {exc.strerror}") from exc
        if self.sync == "batch":
            with self._lock:
                self._unsynced.append(path)

    def _refresh_existing(self, path: Path, size: int) -> bool:
        """True if the block is already stored whole; its mtime is then set to now, so a
        collection counts it as young (under the sweep lock: see dag.gc, point 5)."""
        with self._sweep_lock:
            try:
                if path.stat().st_size != size:
                    return False
            except FileNotFoundError:
                return False
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.utime(path)
            return True

    def _put_many_sync(self, blocks: list[Block]) -> None:
        for block in blocks:
            self._put_sync(block)

    def _flush_sync(self) -> None:
        with self._lock:
            paths, self._unsynced = self._unsynced, []
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                _fsync_path(path)
        for directory in {path.parent for path in paths}:
            _fsync_path(directory)

    def _get_sync(self, cid: CID) -> bytes:
        inlined = identity_data(cid)
        if inlined is not None:
            return inlined
        try:
            data = self.path_for(cid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(cid_to_str(cid)) from None
        except OSError as exc:
            raise StoreError(f"cannot read block {cid_to_str(cid)}: {exc.strerror}") from exc
        return Block.checked(cid, data).data if self.hash_on_read else data

    def _scan(self) -> Iterator[tuple[str, str]]:
        """(key, path) of every block file, sorted: one directory scan (also used by gc)."""
        with os.scandir(self.blocks_dir) as it:
            shards = sorted(entry.path for entry in it if entry.is_dir())
        for shard in shards:
            try:
                with os.scandir(shard) as it:
                    names = sorted(entry.name for entry in it)
            except FileNotFoundError:
                continue
            for name in names:
                if name.endswith(_SUFFIX) and not name.startswith("."):
                    yield name[: -len(_SUFFIX)], os.path.join(shard, name)

    def _iter_keys(self) -> Iterator[tuple[str, Path]]:
        for key, path in self._scan():
            yield key, Path(path)

    def _verify_sync(self, repair: bool) -> VerifyReport:
        report = VerifyReport()
        for key, path in self._iter_keys():
            report.checked += 1
            try:
                cid = _cid_from_key(key)
                Block.checked(cid, path.read_bytes())
            except BlockCorrupt:
                report.bad.append(cid_to_str(cid))
                if repair:
                    path.unlink(missing_ok=True)
            except Exception:
                report.bad.append(f"unreadable block file {path.name}")
        report.pins_checked, report.incomplete = self._check_pins_sync()
        return report

    def _check_pins_sync(self) -> tuple[int, list[IncompletePin]]:
        pins = pins_from_rows(self._pins.rows())
        return len(pins), drive_sync(completeness_steps(pins), self._read_for_walk)

    # -- garbage collection (run in one worker thread; see dag.gc) --------------------------
    def _read_for_walk(self, cid: CID) -> BlockAnswer:
        """A block's bytes for a walk, unverified; a raw block's size only; None if absent."""
        try:
            inlined = identity_data(cid)
            if inlined is not None:
                return len(inlined) if cid.codec.name == "raw" else inlined
            path = self.path_for(cid)
        except CidError:
            return None  # a digest longer than any CID of ours (linked from DAG-CBOR)
        try:
            if cid.codec.name == "raw":
                return os.stat(path).st_size
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read block {cid_to_str(cid)}: {exc.strerror}") from exc

    def _mark_sync(self, marks: MarkSet, roots: Iterable[tuple[CID, bool]]) -> None:
        deep = [cid for cid, recursive in roots if recursive]
        shallow = [cid for cid, recursive in roots if not recursive]
        drive_sync(mark_steps(marks, deep), self._read_for_walk)
        drive_sync(mark_steps(marks, shallow, recursive=False), self._read_for_walk)

    @contextlib.contextmanager
    def _held(self, roots: tuple[CID, ...]) -> Iterator[None]:
        with self._sweep_lock:
            for root in roots:
                self._holds[root] = self._holds.get(root, 0) + 1
            if self._collecting:
                self._late_roots.extend((root, True) for root in roots)
        try:
            yield
        finally:
            with self._sweep_lock:
                for root in roots:
                    left = self._holds[root] - 1
                    if left:
                        self._holds[root] = left
                    else:
                        del self._holds[root]

    def _note_pinned(self, cid: CID, recursive: bool) -> None:
        with self._sweep_lock:
            if self._collecting:
                self._late_roots.append((cid, recursive))

    def _fs_now_ns(self, fd: int) -> int:
        """The file system's current time (as block mtimes see it): touch the lock file."""
        os.utime(fd)
        return os.fstat(fd).st_mtime_ns

    def _collect_sync(
        self, keep: list[CID], keep_shallow: list[CID], grace_s: float, check: Callable[[], None]
    ) -> GcReport:
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another process's collection: wait for it
            started = time.perf_counter()
            cutoff_ns = self._fs_now_ns(fd) - int(grace_s * 1e9)
            with self._sweep_lock:
                self._collecting = True
                self._late_roots = []
                held = list(self._holds)
            try:
                report = self._mark_and_sweep(keep, keep_shallow, held, cutoff_ns, check)
            finally:
                with self._sweep_lock:
                    self._collecting = False
                    self._late_roots = []
            report.seconds = time.perf_counter() - started
            return report
        finally:
            os.close(fd)  # releases the flock

    def _mark_and_sweep(
        self,
        keep: list[CID],
        keep_shallow: list[CID],
        held: list[CID],
        cutoff_ns: int,
        check: Callable[[], None],
    ) -> GcReport:
        pins = pins_from_rows(self._pins.rows())  # read after the collection flag went up
        marks = MarkSet()
        roots = [(pin.cid, pin.recursive) for pin in pins]
        roots += [(cid, True) for cid in [*keep, *held]]
        roots += [(cid, False) for cid in keep_shallow]
        self._mark_sync(marks, roots)
        check()
        report = GcReport()
        candidates: list[tuple[bytes, str]] = []
        for name, path in self._scan():
            try:
                key = _key_bytes(name)
            except (binascii.Error, ValueError):
                continue  # not a block file of ours: never removed
            report.examined += 1
            if key not in marks.keys:
                candidates.append((key, path))
        report.marked = report.examined - len(candidates)
        for index, start in enumerate(range(0, len(candidates), self._gc_batch)):
            if self._before_batch is not None:
                self._before_batch(index)
            check()  # cancelled: stop here (what was removed so far was garbage)
            self._sweep_batch(marks, candidates[start : start + self._gc_batch], cutoff_ns, report)
        return report

    def _sweep_batch(
        self, marks: MarkSet, batch: list[tuple[bytes, str]], cutoff_ns: int, report: GcReport
    ) -> None:
        """Delete what is still unreachable and old, under the sweep lock, once every root held
        or pinned since the mark began is marked (dag.gc, point 4)."""
        while True:
            with self._sweep_lock:
                late, self._late_roots = self._late_roots, []
                if not late:
                    for key, path in batch:
                        if key in marks.keys:
                            report.marked += 1
                            continue
                        try:
                            stat = os.stat(path)
                        except FileNotFoundError:
                            continue
                        if stat.st_mtime_ns >= cutoff_ns:
                            report.kept_young += 1
                            continue
                        try:
                            os.unlink(path)
                        except FileNotFoundError:
                            continue
                        report.removed += 1
                        report.freed_bytes += stat.st_size
                    return
            self._mark_sync(marks, late)  # outside the lock: hold() need not wait for a walk

    def _usage_sync(self) -> StoreUsage:
        usage = StoreUsage()
        for _, path in self._scan():
            with contextlib.suppress(FileNotFoundError):
                usage.bytes += os.stat(path).st_size
                usage.blocks += 1
        return usage

    def _measure_sync(self, root: CID, recursive: bool, seen: set[bytes]) -> DagSize:
        return drive_sync(measure_steps(root, recursive=recursive, seen=seen), self._read_for_walk)

    # -- Blockstore ------------------------------------------------------------------------
    async def put(self, block: Block) -> None:
        await trio.to_thread.run_sync(self._put_sync, block)

    async def put_many(self, blocks: list[Block]) -> None:
        if blocks:
            await trio.to_thread.run_sync(self._put_many_sync, blocks)

    async def get(self, cid: CID) -> bytes:
        inlined = identity_data(cid)
        if inlined is not None:
            return inlined
        return await trio.to_thread.run_sync(self._get_sync, cid)

    async def has(self, cid: CID) -> bool:
        if identity_data(cid) is not None:
            return True
        return await trio.to_thread.run_sync(self.path_for(cid).exists)

    async def delete(self, cid: CID) -> None:
        if identity_data(cid) is not None:
            return  # never stored
        await trio.to_thread.run_sync(lambda: self.path_for(cid).unlink(missing_ok=True))

    async def cids(self) -> AsyncIterator[CID]:
        keys = await trio.to_thread.run_sync(lambda: [k for k, _ in self._iter_keys()])
        for key in keys:
            yield _cid_from_key(key)

    async def flush(self) -> None:
        if self._unsynced:
            await trio.to_thread.run_sync(self._flush_sync)

    async def verify(self, *, repair: bool = False) -> VerifyReport:
        return await trio.to_thread.run_sync(self._verify_sync, repair)

    async def check_pins(self) -> tuple[int, list[IncompletePin]]:
        return await trio.to_thread.run_sync(self._check_pins_sync)

    async def pin(self, cid: CID, *, recursive: bool = True, reason: str = "local") -> None:
        check_reason(reason)
        await trio.to_thread.run_sync(self._pins.add, cid_to_str(cid), reason, recursive)
        self._note_pinned(cid, recursive)  # a collection under way marks it too

    async def unpin(self, cid: CID, *, reason: str | None = None) -> None:
        await trio.to_thread.run_sync(self._pins.remove, cid_to_str(cid), reason)

    async def pins(self) -> list[Pin]:
        rows = await trio.to_thread.run_sync(self._pins.rows)
        return pins_from_rows(rows)

    def hold(self, *roots: CID) -> contextlib.AbstractContextManager[None]:
        """Keep every block reachable from ``roots`` through any collection in this process
        while the ``with`` block runs, including one already sweeping: once the block is
        entered, nothing reachable from the roots is removed (dag.gc, point 4). Entering or
        leaving may wait for one deletion batch (at most ``_gc_batch`` unlinks)."""
        return self._held(roots)

    async def collect_garbage(
        self,
        *,
        keep: Iterable[CID] = (),
        keep_shallow: Iterable[CID] = (),
        grace_s: float = 600.0,
    ) -> GcReport:
        if grace_s < 0:
            raise StoreError(f"grace period must be 0 or more seconds, got {grace_s}")
        keep, keep_shallow = list(keep), list(keep_shallow)
        async with self._gc_lock:
            return await trio.to_thread.run_sync(
                self._collect_sync, keep, keep_shallow, grace_s, trio.from_thread.check_cancelled
            )

    async def measure(
        self, root: CID, *, recursive: bool = True, seen: set[bytes] | None = None
    ) -> DagSize:
        seen = set() if seen is None else seen
        return await trio.to_thread.run_sync(self._measure_sync, root, recursive, seen)

    async def usage(self) -> StoreUsage:
        return await trio.to_thread.run_sync(self._usage_sync)

    async def aclose(self) -> None:
        await self.flush()
        self._pins.close()
