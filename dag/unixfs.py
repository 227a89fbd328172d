"""UnixFS files: a streaming importer that gives the same root CID as ``ipfs add``, and a reader.

:class:`FileBuilder` is sans-I/O: feed it chunks, it hands back the blocks to store, and at the
end the root. It builds Kubo's *balanced* layout: leaves are grouped 174 to a parent, parents
174 to a grandparent, and so on; a partial group at the end still gets its own parent unless it
is the top of the tree (so a one-chunk file's root is the leaf itself). Only one pending group of
links per level is held, so memory does not grow with file size.

:func:`import_file` and :func:`import_chunks` are the trio adapters: reading and hashing run in a
worker thread while the previous block is written, with a small bounded channel between them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import trio
from multiformats import CID

from ._groups import first_error
from .blockstore import Blockstore
from .cids import DEFAULT_HASH, Block
from .dagpb import PBLink, PBNode, UnixFSData, UnixFSType, decode_node, encode_node
from .errors import CodecError

__all__ = [
    "MAX_CHUNK_SIZE",
    "FileBuilder",
    "ImportParams",
    "ImportResult",
    "file_size",
    "import_chunks",
    "import_file",
    "read_file",
]

MAX_CHUNK_SIZE = 1 << 20  # Kubo refuses larger chunks; bitswap peers refuse larger blocks
DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_MAX_LINKS = 174  # go-unixfs/boxo DefaultLinksPerBlock
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ImportParams:
    """How a file is cut into blocks; the defaults equal
    ``ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576``."""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    cid_version: int = 1
    raw_leaves: bool | None = None  # None: True for CIDv1, False for CIDv0 (as Kubo does)
    hashfun: str = DEFAULT_HASH
    max_links: int = DEFAULT_MAX_LINKS

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be 1..{MAX_CHUNK_SIZE} bytes, got {self.chunk_size}")
        if self.cid_version not in (0, 1):
            raise ValueError(f"CID version must be 0 or 1, got {self.cid_version}")
        if self.cid_version == 0 and self.hashfun != "sha2-256":
            raise ValueError("CIDv0 requires sha2-256")
        if self.max_links < 2:
            raise ValueError("max_links must be at least 2")

    @property
    def use_raw_leaves(self) -> bool:
        return self.cid_version == 1 if self.raw_leaves is None else self.raw_leaves

    def describe(self) -> dict[str, int | bool]:
        return {
            "size": self.chunk_size,
            "cid_version": self.cid_version,
            "raw_leaves": self.use_raw_leaves,
        }


@dataclass(frozen=True, slots=True)
class _Link:
    cid: CID
    tsize: int  # bytes of the whole subtree's blocks (dag-pb Tsize)
    filesize: int  # bytes of file content below this link


@dataclass(slots=True)
class FileBuilder:
    """Sans-I/O balanced-layout UnixFS builder."""

    params: ImportParams = field(default_factory=ImportParams)
    size: int = 0
    blocks: int = 0
    _levels: list[list[_Link]] = field(default_factory=lambda: [[]])
    _chunks: int = 0

    def make_leaf(self, data: bytes) -> tuple[Block, int]:
        """Encode one chunk as a leaf block (pure; safe to call from a worker thread)."""
        p = self.params
        if p.use_raw_leaves:
            return Block.encode(data, "raw", version=1, hashfun=p.hashfun), len(data)
        payload = UnixFSData(UnixFSType.FILE, data, len(data)).encode()
        block = Block.encode(
            encode_node(PBNode((), payload)), "dag-pb", version=p.cid_version, hashfun=p.hashfun
        )
        return block, len(data)

    def add_leaf(self, leaf: Block, content_size: int) -> list[Block]:
        """Record a leaf made by :meth:`make_leaf`; return it plus any parent that became full."""
        out = [leaf]
        self._chunks += 1
        self.size += content_size
        tsize = len(leaf.data)
        self._levels[0].append(_Link(leaf.cid, tsize, content_size))
        level = 0
        while len(self._levels[level]) >= self.params.max_links:
            out.append(self._close_level(level))
            level += 1
        self.blocks += len(out)
        return out

    def add_chunk(self, data: bytes) -> list[Block]:
        return self.add_leaf(*self.make_leaf(data))

    def finish(self) -> tuple[list[Block], CID]:
        """Close every pending group; return the remaining blocks and the root CID."""
        out: list[Block] = []
        if self._chunks == 0:
            out = self.add_chunk(b"")
            return out, out[0].cid
        level = 0
        while True:
            pending = self._levels[level]
            is_top = all(not lv for lv in self._levels[level + 1 :])
            if is_top and len(pending) == 1:
                self.blocks += len(out)
                return out, pending[0].cid
            if pending:
                out.append(self._close_level(level))
            level += 1

    def _close_level(self, level: int) -> Block:
        links = self._levels[level]
        self._levels[level] = []
        payload = UnixFSData(
            UnixFSType.FILE,
            None,
            sum(link.filesize for link in links),
            tuple(link.filesize for link in links),
        ).encode()
        node = PBNode(tuple(PBLink(link.cid, link.tsize) for link in links), payload)
        block = Block.encode(
            encode_node(node),
            "dag-pb",
            version=self.params.cid_version,
            hashfun=self.params.hashfun,
        )
        if level + 1 == len(self._levels):
            self._levels.append([])
        parent = _Link(
            block.cid,
            len(block.data) + sum(link.tsize for link in links),
            sum(link.filesize for link in links),
        )
        self._levels[level + 1].append(parent)
        return block


@dataclass(frozen=True, slots=True)
class ImportResult:
    cid: CID
    size: int
    blocks: int
    params: ImportParams


def _batch_size(chunk_size: int) -> int:
    """Leaves handed over per thread hop: about 1 MiB, so small chunks do not pay a hop each
    (larger batches were slower here: fresh memory costs more than a hop)."""
    return max(1, min(1024, (1 << 20) // chunk_size))


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes unless EOF comes first (as Kubo's size splitter does)."""
    data = stream.read(size)
    if not data or len(data) == size:
        return data or b""
    parts = [data]
    got = len(data)
    while got < size and (more := stream.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


async def _store_leaves(
    store: Blockstore,
    builder: FileBuilder,
    receive: trio.MemoryReceiveChannel[list[tuple[Block, int]]],
    progress: Progress | None,
) -> CID:
    """Store leaves as they come, while a second task fsyncs what was written so far, so that
    the disk's write-back overlaps hashing instead of all happening at the end."""
    flush_send, flush_receive = trio.open_memory_channel[None](1)

    async def flusher() -> None:
        async with flush_receive:
            async for _ in flush_receive:
                await store.flush()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flusher)
        async with flush_send, receive:
            async for batch in receive:
                blocks = [b for leaf, size in batch for b in builder.add_leaf(leaf, size)]
                await store.put_many(blocks)
                with contextlib.suppress(trio.WouldBlock):
                    flush_send.send_nowait(None)
                if progress:
                    progress(sum(size for _, size in batch))
    blocks, root = builder.finish()
    await store.put_many(blocks)
    await store.flush()
    return root


Batches = AsyncIterator[list[tuple[Block, int]]]


async def _import(
    store: Blockstore, builder: FileBuilder, batches: Batches, progress: Progress | None
) -> ImportResult:
    """Run the pipeline: ``batches`` (leaves made in worker threads) -> bounded channel ->
    :func:`_store_leaves`. At most a few chunks are in flight, whatever the file's size."""
    send, receive = trio.open_memory_channel[list[tuple[Block, int]]](2)
    result: list[CID] = []

    async def consume() -> None:
        result.append(await _store_leaves(store, builder, receive, progress))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            async with send:
                async for batch in batches:
                    await send.send(batch)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return ImportResult(result[0], builder.size, builder.blocks, builder.params)


async def _file_batches(stream: BinaryIO, builder: FileBuilder) -> Batches:
    chunk_size = builder.params.chunk_size
    per_batch = _batch_size(chunk_size)

    def next_leaves() -> list[tuple[Block, int]]:
        batch: list[tuple[Block, int]] = []
        while len(batch) < per_batch and (data := _read_full(stream, chunk_size)):
            batch.append(builder.make_leaf(data))
        return batch

    while batch := await trio.to_thread.run_sync(next_leaves):
        yield batch


async def _stream_batches(chunks: AsyncIterable[bytes], builder: FileBuilder) -> Batches:
    size = builder.params.chunk_size
    pending = bytearray()
    async for piece in chunks:
        pending += piece
        while len(pending) >= size:
            data = bytes(pending[:size])
            del pending[:size]
            yield [await trio.to_thread.run_sync(builder.make_leaf, data)]
    if pending:
        yield [await trio.to_thread.run_sync(builder.make_leaf, bytes(pending))]


async def import_file(
    store: Blockstore,
    source: str | os.PathLike[str] | BinaryIO,
    params: ImportParams | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a file (path or binary stream) as UnixFS; memory stays flat whatever its size."""
    builder = FileBuilder(params or ImportParams())
    if not isinstance(source, str | os.PathLike):
        return await _import(store, builder, _file_batches(source, builder), progress)
    with open(Path(source), "rb") as stream:
        return await _import(store, builder, _file_batches(stream, builder), progress)


async def import_chunks(
    store: Blockstore,
    chunks: AsyncIterable[bytes],
    params: ImportParams | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a file that arrives as an async stream of byte strings of any sizes."""
    builder = FileBuilder(params or ImportParams())
    return await _import(store, builder, _stream_batches(chunks, builder), progress)


def _file_node(cid: CID, data: bytes) -> tuple[PBNode, UnixFSData]:
    node = decode_node(data)
    if node.data is None:
        raise CodecError(f"{cid} is a dag-pb node without UnixFS data")
    meta = UnixFSData.decode(node.data)
    if meta.type not in (UnixFSType.FILE, UnixFSType.RAW):
        raise CodecError(f"{cid} is a UnixFS {meta.type.name.lower()}, not a file")
    if len(meta.blocksizes) != len(node.links):  # also links without any blocksizes
        raise CodecError(f"{cid}: UnixFS blocksizes do not match its links")
    # go-unixfs keeps filesize = inline data + blocksizes; a node that says otherwise would
    # make file_size (the gateway's Content-Length) disagree with the bytes read_file yields.
    if meta.filesize is not None and meta.filesize != _content_size(meta):
        raise CodecError(f"{cid}: UnixFS filesize {meta.filesize} is not its data + blocksizes")
    return node, meta


def _content_size(meta: UnixFSData) -> int:
    return len(meta.data or b"") + sum(meta.blocksizes)


async def file_size(store: Blockstore, cid: CID) -> int:
    """Size in bytes of the UnixFS file (or raw block) at ``cid``."""
    data = await store.get(cid)
    if cid.codec.name == "raw":
        return len(data)
    if cid.codec.name != "dag-pb":
        raise CodecError(f"{cid} is {cid.codec.name}, not a UnixFS file")
    _node, meta = _file_node(cid, data)
    if meta.filesize is not None:
        return meta.filesize
    return len(meta.data or b"") + sum(meta.blocksizes)


async def read_file(
    store: Blockstore, cid: CID, offset: int = 0, length: int | None = None
) -> AsyncIterator[bytes]:
    """Yield the bytes of a UnixFS file, whole or the range [offset, offset+length)."""
    if offset < 0 or (length is not None and length < 0):
        raise ValueError("offset and length must not be negative")
    end = None if length is None else offset + length
    async for piece in _read(store, cid, offset, end):
        if piece:
            yield piece


async def _read(store: Blockstore, cid: CID, start: int, end: int | None) -> AsyncIterator[bytes]:
    """Depth first, in file order, with an explicit stack of (cid, start, end, size) rather
    than one nested generator per level: a peer can serve a DAG thousands of levels deep, which
    the interpreter's recursion limit would turn into a RecursionError. ``size`` is what the
    parent's blocksizes promise for the child; a child holding another amount is refused, so a
    range read and a whole read always agree with each other and with :func:`file_size`."""
    stack: list[tuple[CID, int, int | None, int | None]] = [(cid, start, end, None)]
    while stack:
        cid, start, end, size = stack.pop()
        if end is not None and end <= start:
            continue
        data = await store.get(cid)
        if cid.codec.name == "raw":
            if size is not None and len(data) != size:
                raise CodecError(f"{cid} holds {len(data)} bytes, its parent says {size}")
            yield data[start:end]
            continue
        if cid.codec.name != "dag-pb":
            raise CodecError(f"{cid} is {cid.codec.name}, not a UnixFS file")
        node, meta = _file_node(cid, data)
        if size is not None and _content_size(meta) != size:
            raise CodecError(f"{cid} holds {_content_size(meta)} bytes, its parent says {size}")
        pos = 0
        inline = meta.data or b""
        if inline:
            if start < len(inline):
                yield inline[start:end]
            pos = len(inline)
        children: list[tuple[CID, int, int | None, int | None]] = []
        for link, blocksize in zip(node.links, meta.blocksizes, strict=True):
            if end is not None and pos >= end:
                break
            if pos + blocksize > start:
                sub_end = None if end is None else min(blocksize, end - pos)
                children.append((link.cid, max(0, start - pos), sub_end, blocksize))
            pos += blocksize
        stack.extend(reversed(children))
