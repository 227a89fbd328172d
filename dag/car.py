"""CARv1: export any DAG reachable from some roots, import with every block verified.

CARv1 is a varint-framed header (DAG-CBOR ``{"roots": [...], "version": 1}``) followed by
varint-framed ``CID bytes ++ block bytes`` sections. No maintained Python CAR library exists, so
this is written by hand (docs/decisions.md). :class:`CarReader` is sans-I/O: feed it bytes, it
returns verified blocks; :func:`import_car` stores them and pins the roots only once the whole DAG
is present. An identity CID's section is checked by comparing its bytes with the CID's digest.

A failed import pins nothing and deletes nothing: the blocks it wrote stay, unpinned, until a
garbage collection finds them unreachable and older than its grace period (:mod:`dag.gc`). It
must not delete them itself: while it ran, another writer (an upload through the API, a fetch,
a second import, possibly in another process) may have stored the same blocks -- a put of a
block already there writes nothing -- and be about to pin them or have pinned them already.
No lock spans "put, then pin" across writers and processes, so the importer cannot tell;
the collector can (it marks every pin, honours holds and re-puts, and spares young blocks).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import trio
from multiformats import CID

from ._varint import decode_uvarint, encode_uvarint
from .blockstore import Blockstore
from .cids import Block, cid_to_str, decode_cid_bytes, multihash_key
from .dagcbor import decode, encode
from .errors import BlockCorrupt, CarError, CidError, CodecError
from .links import links_of
from .walk import walk_dag

__all__ = ["CarImportResult", "CarReader", "encode_header", "file_chunks", "import_car", "iter_car"]

MAX_HEADER = 1 << 20
MAX_SECTION = (4 << 20) + 1024  # a block may be up to 4 MiB, plus its CID


def encode_header(roots: list[CID]) -> bytes:
    header = encode({"roots": list(roots), "version": 1})
    return encode_uvarint(len(header)) + header


def encode_section(cid: CID, data: bytes) -> bytes:
    raw = bytes(cid)
    return encode_uvarint(len(raw) + len(data)) + raw + data


async def iter_car(store: Blockstore, roots: list[CID]) -> AsyncIterator[bytes]:
    """The CAR file of everything reachable from ``roots``, as a stream of byte strings."""
    yield encode_header(roots)
    async for cid, data in walk_dag(store, roots):
        yield encode_section(cid, data)


def _read_uvarint(buf: bytearray | bytes, pos: int) -> tuple[int, int] | None:
    """(value, new position), or None if the buffer ends inside the varint."""
    try:
        return decode_uvarint(buf, pos)
    except EOFError:
        return None
    except ValueError:
        raise CarError("malformed CAR: varint too long") from None


def _split_cid(section: bytes) -> tuple[CID, int]:
    """Decode the CID at the start of a section; return it and its length in bytes."""
    try:
        return decode_cid_bytes(section)
    except CidError as exc:
        raise CarError(f"malformed CAR: section does not start with a valid CID ({exc})") from None


@dataclass(slots=True)
class CarReader:
    """Sans-I/O CARv1 decoder. ``feed`` returns the complete, verified blocks seen so far."""

    roots: list[CID] | None = None
    blocks: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _offset: int = 0  # bytes consumed so far, for error messages

    def feed(self, data: bytes) -> list[Block]:
        self._buf += data
        out: list[Block] = []
        while True:
            read = _read_uvarint(self._buf, 0)
            if read is None:
                return out
            length, start = read
            limit = MAX_HEADER if self.roots is None else MAX_SECTION
            if length > limit:
                what = "header" if self.roots is None else "section"
                raise CarError(f"malformed CAR: {what} of {length} bytes at offset {self._offset}")
            if len(self._buf) < start + length:
                return out
            body = bytes(self._buf[start : start + length])
            del self._buf[: start + length]
            at = self._offset
            self._offset += start + length
            if self.roots is None:
                self._read_header(body)
                continue
            if length == 0:
                raise CarError(f"malformed CAR: empty section at offset {at}")
            cid, cid_len = _split_cid(body)
            try:
                out.append(Block.checked(cid, body[cid_len:]))
            except BlockCorrupt:
                raise CarError(
                    f"CAR block at offset {at} does not match its CID {cid_to_str(cid)}"
                ) from None
            self.blocks += 1

    def _read_header(self, body: bytes) -> None:
        try:
            header = decode(body)
        except CodecError as exc:
            raise CarError(f"malformed CAR header: {exc}") from None
        if not isinstance(header, dict) or "version" not in header:
            raise CarError("malformed CAR header: not a map with a version")
        version = header["version"]
        if version == 2 and type(version) is int:
            raise CarError("CARv2 files are not supported; export as CARv1")
        if type(version) is not int or version != 1:
            raise CarError(f"unsupported CAR version {header['version']!r}")
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
            raise CarError("malformed CAR header: roots must be a list of CIDs")
        if not roots:
            raise CarError("malformed CAR header: no roots")
        self.roots = roots

    def finish(self) -> None:
        """Call at end of input; raise if the file stopped mid-way."""
        if self.roots is None:
            raise CarError("truncated CAR: no complete header")
        if self._buf:
            raise CarError(
                f"truncated CAR: the file ends inside the section at offset {self._offset}"
            )


@dataclass(frozen=True, slots=True)
class CarImportResult:
    roots: list[CID]
    blocks: int
    new_blocks: int


async def file_chunks(
    source: str | os.PathLike[str] | BinaryIO, size: int = 1 << 20
) -> AsyncIterator[bytes]:
    """Read a file (a path, or a binary stream this closes at the end) as an async stream of
    chunks of at most ``size`` bytes, the reads done in a worker thread. Each read returns
    what one system call gives: from a pipe, each chunk is what has arrived so far, so its
    blocks are stored at once rather than after ``size`` bytes or the end of the input."""
    if isinstance(source, str | os.PathLike):
        f: BinaryIO = await trio.to_thread.run_sync(
            lambda: open(Path(source), "rb", buffering=0)  # noqa: SIM115 (closed below)
        )
    else:
        f = source
    read = getattr(f, "read1", f.read)  # a buffered stream: one raw read at most
    try:
        while chunk := await trio.to_thread.run_sync(read, size):
            yield chunk
    finally:
        f.close()


async def import_car(
    store: Blockstore, chunks: AsyncIterable[bytes], *, pin: bool = True
) -> CarImportResult:
    """Store every block of a CAR stream after checking it against its CID.

    On any error (truncation, a mismatching block, a malformed section, a linked block that is
    neither in the file nor already stored) :class:`CarError` is raised and nothing is pinned;
    the blocks already written are left for garbage collection (see the module docstring), and
    the message says how many. The roots are pinned only when the whole DAG is present.
    """
    reader = CarReader()
    added: list[CID] = []
    seen: set[bytes] = set()
    linked: dict[bytes, CID] = {}
    try:
        async for chunk in chunks:
            blocks = await trio.to_thread.run_sync(reader.feed, chunk)
            for block in blocks:
                seen.add(multihash_key(block.cid))
                try:
                    links = links_of(block.cid, block.data)
                except CodecError as exc:
                    raise CarError(f"CAR block {cid_to_str(block.cid)}: {exc}") from None
                for link in links:
                    linked.setdefault(multihash_key(link), link)
                # A block already stored is put again all the same: the put refreshes it
                # (FlatFs: its mtime), so a collection sweeping meanwhile, which marked before
                # the roots are pinned below, sees it young and keeps it.
                present = await store.has(block.cid)
                await store.put(block)
                if not present:
                    added.append(block.cid)
        reader.finish()
        roots = reader.roots or []
        for root in roots:
            if multihash_key(root) not in seen and not await store.has(root):
                raise CarError(f"CAR does not contain its root {cid_to_str(root)}")
        for key, link in linked.items():
            if key not in seen and not await store.has(link):
                raise CarError(f"CAR is incomplete: block {cid_to_str(link)} is missing")
        await store.flush()
        if pin:
            for root in roots:
                await store.pin(root)
    except CarError as exc:
        if not added:
            raise
        raise CarError(
            f"{exc}; the {len(added)} new blocks stored before the error are unpinned and go at"
            " the next garbage collection (`artdag gc`)"
        ) from None
    return CarImportResult(roots, reader.blocks, len(added))
