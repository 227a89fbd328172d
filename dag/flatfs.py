"""The embedded blockstore: one file per block, like Kubo's flatfs.

A block lives at ``blocks/<shard>/<KEY>.data`` where KEY is the base32 multihash (so the same
bytes addressed as raw or dag-pb are stored once) and shard is KEY's next-to-last two
characters. Writes go to a temp file that is renamed into place, so a crash (even ``kill -9``)
leaves either the whole block or none of it; temp files of dead writers are removed on open.
Pins, with their reasons, live in ``pins.db`` (:mod:`dag.pin_table`).

Durability: ``sync="batch"`` (default) fsyncs the blocks written since the last :meth:`flush`
when flush is called (importers call it before any record refers to the blocks);
``"always"`` fsyncs each block before its rename; ``"never"`` leaves it to the OS.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import trio
from multiformats import CID

from .blockstore import Blockstore, Pin, VerifyReport
from .cids import Block, cid_to_str, multihash_key
from .errors import BlockCorrupt, BlockNotFound, StoreError
from .pin_table import PinTable, check_reason, pins_from_rows

__all__ = ["FlatFsBlockstore"]

SyncMode = Literal["always", "batch", "never"]
_SUFFIX = ".data"


def _key(cid: CID) -> str:
    return base64.b32encode(multihash_key(cid)).decode().rstrip("=")


def _cid_from_key(key: str) -> CID:
    raw = base64.b32decode(key + "=" * (-len(key) % 8))
    return CID("base32", 1, "raw", raw)


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
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[Path] = set()
        self._unsynced: list[Path] = []
        self._lock = threading.Lock()
        self._pins = PinTable(self.root / "pins.db")
        self.removed_temp_files = self._remove_stale_temp_files()

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
        path = self.path_for(block.cid)
        try:
            if path.stat().st_size == len(block.data):
                return
        except FileNotFoundError:
            pass
        directory = path.parent
        if directory not in self._known_dirs:
            directory.mkdir(parents=True, exist_ok=True)
            self._known_dirs.add(directory)
        tmp = directory / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
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
        try:
            data = self.path_for(cid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(cid_to_str(cid)) from None
        except OSError as exc:
            raise StoreError(f"cannot read block {cid_to_str(cid)}: {exc.strerror}") from exc
        return Block.checked(cid, data).data if self.hash_on_read else data

    def _iter_keys(self) -> Iterator[tuple[str, Path]]:
        for shard in sorted(self.blocks_dir.iterdir()):
            if not shard.is_dir():
                continue
            for entry in sorted(shard.iterdir()):
                name = entry.name
                if name.endswith(_SUFFIX) and not name.startswith("."):
                    yield name[: -len(_SUFFIX)], entry

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
        return report

    # -- Blockstore ------------------------------------------------------------------------
    async def put(self, block: Block) -> None:
        await trio.to_thread.run_sync(self._put_sync, block)

    async def put_many(self, blocks: list[Block]) -> None:
        if blocks:
            await trio.to_thread.run_sync(self._put_many_sync, blocks)

    async def get(self, cid: CID) -> bytes:
        return await trio.to_thread.run_sync(self._get_sync, cid)

    async def has(self, cid: CID) -> bool:
        return await trio.to_thread.run_sync(self.path_for(cid).exists)

    async def delete(self, cid: CID) -> None:
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

    async def pin(self, cid: CID, *, recursive: bool = True, reason: str = "local") -> None:
        check_reason(reason)
        await trio.to_thread.run_sync(self._pins.add, cid_to_str(cid), reason, recursive)

    async def unpin(self, cid: CID, *, reason: str | None = None) -> None:
        await trio.to_thread.run_sync(self._pins.remove, cid_to_str(cid), reason)

    async def pins(self) -> list[Pin]:
        rows = await trio.to_thread.run_sync(self._pins.rows)
        return pins_from_rows(rows)

    async def aclose(self) -> None:
        await self.flush()
        self._pins.close()
