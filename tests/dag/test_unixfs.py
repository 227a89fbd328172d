"""UnixFS import (FileBuilder, import_file, import_chunks) and read_file.

The tree shape is checked against an independent reference written here: a transcription of
Kubo's balanced layout (boxo ``ipld/unixfs/importer/balanced/builder.go``: ``Layout`` and
``fillNodeRec``) with its own protobuf and CID encoding, so it shares no code with ``dag/``.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import random
import tracemalloc
from collections.abc import AsyncIterator

import pytest
import trio
from multiformats import CID

import dag
from dag import Block, BlockNotFound, Blockstore, FileBuilder, ImportParams, Pin, VerifyReport
from tests.harness.wire import read_uvarint, uvarint

# ------------------------------------------------------------------ independent reference encoder

DAG_PB, RAW = 0x70, 0x55
HASHES = {"sha2-256": (0x12, hashlib.sha256), "sha3-256": (0x16, hashlib.sha3_256)}


def _pb_bytes(field: int, value: bytes) -> bytes:
    return uvarint(field << 3 | 2) + uvarint(len(value)) + value


def _pb_varint(field: int, value: int) -> bytes:
    return uvarint(field << 3) + uvarint(value)


def _unixfs_file(data: bytes | None, filesize: int, blocksizes: list[int]) -> bytes:
    # message Data { Type=1; Data=2; filesize=3; repeated blocksizes=4 (unpacked, proto2) }
    out = _pb_varint(1, 2)  # Type = File
    if data:
        out += _pb_bytes(2, data)
    out += _pb_varint(3, filesize)
    for size in blocksizes:
        out += _pb_varint(4, size)
    return out


def _pb_node(links: list[tuple[bytes, int]], data: bytes) -> bytes:
    # PBNode: Links (field 2) are written before Data (field 1), as go-merkledag does.
    out = b""
    for cid_bytes, tsize in links:
        out += _pb_bytes(2, _pb_bytes(1, cid_bytes) + _pb_bytes(2, b"") + _pb_varint(3, tsize))
    return out + _pb_bytes(1, data)


class Reference:
    """Kubo's balanced DAG builder (boxo importer/balanced), written from the Go source."""

    def __init__(self, data: bytes, chunk: int, max_links: int, version: int, raw: bool, hashfun):
        self.chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        self.next = 0
        self.max_links = max_links
        self.version = version
        self.raw = raw
        self.hash_code, self.hash = HASHES[hashfun]
        self.blocks: dict[bytes, bytes] = {}
        self.emitted = 0

    def _cid(self, codec: int, data: bytes) -> bytes:
        mh = bytes([self.hash_code, 32]) + self.hash(data).digest()
        # boxo NewRawNodeWPrefix: a raw leaf is always CIDv1 (raw has no CIDv0 form)
        if self.version == 0 and codec != RAW:
            return mh
        return uvarint(1) + uvarint(codec) + mh

    def _store(self, codec: int, data: bytes) -> bytes:
        cid = self._cid(codec, data)
        self.blocks[cid] = data
        self.emitted += 1
        return cid

    def done(self) -> bool:
        return self.next >= len(self.chunks)

    def leaf(self, data: bytes) -> tuple[bytes, int, int]:
        """(cid, tsize, filesize) of a leaf, as NewLeafNode builds it."""
        if self.raw:
            return self._store(RAW, data), len(data), len(data)
        block = _pb_node([], _unixfs_file(data, len(data), []))
        return self._store(DAG_PB, block), len(block), len(data)

    def next_leaf(self) -> tuple[bytes, int, int]:
        data = self.chunks[self.next]
        self.next += 1
        return self.leaf(data)

    def commit(self, children: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
        sizes = [c[2] for c in children]
        block = _pb_node([(c[0], c[1]) for c in children], _unixfs_file(None, sum(sizes), sizes))
        return self._store(DAG_PB, block), len(block) + sum(c[1] for c in children), sum(sizes)

    def fill(self, children: list, depth: int) -> tuple[bytes, int, int]:
        while len(children) < self.max_links and not self.done():
            if depth == 1:
                children.append(self.next_leaf())
            else:
                children.append(self.fill([], depth - 1))
        return self.commit(children)

    def layout(self) -> bytes:
        if self.done():
            return self.leaf(b"")[0]
        root = self.next_leaf()
        depth = 1
        while not self.done():
            root = self.fill([root], depth)
            depth += 1
        return root[0]


def reference_root(data: bytes, params: ImportParams) -> tuple[bytes, dict[bytes, bytes], int]:
    raw = params.cid_version == 1 if params.raw_leaves is None else params.raw_leaves
    ref = Reference(
        data, params.chunk_size, params.max_links, params.cid_version, raw, params.hashfun
    )
    root = ref.layout()
    return root, ref.blocks, ref.emitted


def build(data: bytes, params: ImportParams) -> tuple[CID, dict[bytes, bytes], int]:
    """Run FileBuilder over data cut into params.chunk_size pieces."""
    builder = FileBuilder(params)
    blocks: list[Block] = []
    for i in range(0, len(data), params.chunk_size):
        blocks += builder.add_chunk(data[i : i + params.chunk_size])
    rest, root = builder.finish()
    blocks += rest
    for block in blocks:
        assert hashlib.sha256(block.data).digest() == bytes(block.cid.digest)[2:] or (
            params.hashfun != "sha2-256"
        )
    return root, {bytes(b.cid): b.data for b in blocks}, len(blocks)


def tree_depth(blocks: dict[bytes, bytes], root: bytes) -> int:
    """Depth by following link field 2 / hash field 1 with a tiny protobuf reader."""
    data = blocks[root]
    if root[:2] == b"\x01\x55":
        return 0
    links = _pb_links(data)
    if not links:
        return 0
    return 1 + max(tree_depth(blocks, link) for link in links)


def _pb_fields(buf: bytes):
    pos = 0
    while pos < len(buf):
        key, pos = read_uvarint(buf, pos)
        if key & 7 == 0:
            value, pos = read_uvarint(buf, pos)
        else:
            length, pos = read_uvarint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        yield key >> 3, value


def _pb_links(node: bytes) -> list[bytes]:
    return [
        next(v for f, v in _pb_fields(link) if f == 1) for f, link in _pb_fields(node) if f == 2
    ]


# ------------------------------------------------------------------ a tiny in-memory store


class MemStore(Blockstore):
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._pins: dict[CID, bool] = {}
        self.flushes = 0

    async def put(self, block: Block) -> None:
        self.data[bytes(block.cid.digest)] = block.data

    async def get(self, cid: CID) -> bytes:
        try:
            data = self.data[bytes(cid.digest)]
        except KeyError:
            raise BlockNotFound(cid) from None
        return Block.checked(cid, data).data

    async def has(self, cid: CID) -> bool:
        return bytes(cid.digest) in self.data

    async def delete(self, cid: CID) -> None:
        self.data.pop(bytes(cid.digest), None)

    async def cids(self) -> AsyncIterator[CID]:
        for key in list(self.data):
            yield CID("base32", 1, "raw", key)

    async def pin(self, cid: CID, *, recursive: bool = True, reason: str = "local") -> None:
        self._pins[cid] = recursive

    async def unpin(self, cid: CID, *, reason: str | None = None) -> None:
        self._pins.pop(cid, None)

    async def pins(self) -> list[Pin]:
        return [Pin(c, r) for c, r in self._pins.items()]

    async def flush(self) -> None:
        self.flushes += 1

    async def verify(self) -> VerifyReport:
        return VerifyReport(checked=len(self.data), bad=[])


async def read_all(store, cid, offset=0, length=None) -> bytes:
    return b"".join([piece async for piece in dag.read_file(store, cid, offset, length)])


def rand(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# ------------------------------------------------------------------ known vectors


def test_known_vector_empty_file_cidv0():
    root, _blocks, _n = build(b"", ImportParams(cid_version=0))
    assert str(root) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def test_known_vector_hello_cidv0():
    # `echo hello | ipfs add`
    root, blocks, n = build(b"hello\n", ImportParams(cid_version=0))
    assert str(root) == "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
    assert n == 1
    assert blocks[bytes(root)] == b"\x0a\x0c\x08\x02\x12\x06hello\n\x18\x06"


def test_reference_matches_known_vectors():
    """The reference implementation itself reproduces the known `ipfs add` CIDs."""
    params = ImportParams(cid_version=0)
    assert (
        reference_root(b"", params)[0]
        == CID.decode("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH").digest
    )
    assert reference_root(b"hello\n", params)[0] == bytes(
        CID.decode("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
    )


def test_empty_file_cidv1_is_the_empty_raw_block():
    root, blocks, n = build(b"", ImportParams())
    assert bytes(root) == b"\x01\x55\x12\x20" + hashlib.sha256(b"").digest()
    assert root.encode("base32") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert blocks == {bytes(root): b""}
    assert n == 1


def test_single_chunk_cidv1_root_is_the_raw_leaf():
    data = b"hello\n"
    root, _, _ = build(data, ImportParams())
    assert root.codec.name == "raw"
    assert bytes(root) == b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()


# ------------------------------------------------------------------ tree shape vs the reference


def _leaf_counts(max_links: int) -> list[int]:
    counts = set(range(0, max_links + 3))
    for k in (1, 2, 3):
        p = max_links**k
        if p <= 130:
            counts |= {p - 1, p, p + 1, p + 2}
    counts |= {2 * max_links + 1, max_links**2 - max_links + 1}
    return sorted(c for c in counts if c >= 0)


SHAPE_CASES = [
    (chunk, max_links, leaves, tail)
    for max_links in (2, 3, 4, 5)
    for chunk in (1, 16)
    for leaves in _leaf_counts(max_links)
    for tail in (0, 1 if chunk > 1 else 0)
    if not (leaves == 0 and tail)
]


@pytest.mark.parametrize(("version", "raw"), [(1, None), (0, None), (1, False), (0, True)])
def test_tree_matches_reference_balanced_layout(version, raw):
    checked = 0
    for chunk, max_links, leaves, tail in SHAPE_CASES:
        size = leaves * chunk - (chunk - tail if tail else 0)
        if size < 0:
            continue
        data = rand(size, seed=size * 31 + chunk)
        params = ImportParams(
            chunk_size=chunk, max_links=max_links, cid_version=version, raw_leaves=raw
        )
        root, blocks, n = build(data, params)
        ref_root, ref_blocks, ref_n = reference_root(data, params)
        case = f"chunk={chunk} max_links={max_links} size={size}"
        assert bytes(root) == ref_root, case
        assert blocks == ref_blocks, case
        assert n == ref_n, case
        checked += 1
    assert checked > 100


def test_tree_depth_grows_at_exact_powers():
    params = ImportParams(chunk_size=16, max_links=4)
    expectations = {1: 0, 2: 1, 4: 1, 5: 2, 16: 2, 17: 3, 64: 3, 65: 4}
    for leaves, depth in expectations.items():
        data = rand(leaves * 16, seed=leaves)
        root, blocks, _ = build(data, params)
        assert tree_depth(blocks, bytes(root)) == depth, leaves
        ref_root, ref_blocks, _ = reference_root(data, params)
        assert tree_depth(ref_blocks, ref_root) == depth, leaves


def test_partial_last_group_keeps_its_own_parent():
    # 17 leaves, 4 links: root -> [full depth-2 subtree, depth-2 node -> depth-1 node -> leaf]
    params = ImportParams(chunk_size=16, max_links=4)
    data = rand(17 * 16, seed=7)
    root, blocks, _ = build(data, params)
    top = _pb_links(blocks[bytes(root)])
    assert len(top) == 2
    second = _pb_links(blocks[top[1]])
    assert len(second) == 1
    third = _pb_links(blocks[second[0]])
    assert len(third) == 1
    assert third[0][:2] == b"\x01\x55"  # the raw leaf with the 17th chunk
    assert blocks[third[0]] == data[16 * 16 :]


def test_default_params_larger_file_matches_reference():
    params = ImportParams(chunk_size=1024, max_links=174)
    for leaves in (174, 175, 2 * 174 + 1):
        data = rand(leaves * 1024 - 3, seed=leaves)
        root, blocks, _ = build(data, params)
        ref_root, ref_blocks, _ = reference_root(data, params)
        assert bytes(root) == ref_root
        assert blocks == ref_blocks


def test_sha3_tree_matches_reference():
    params = ImportParams(chunk_size=8, max_links=3, hashfun="sha3-256")
    for size in (0, 7, 8, 9, 8 * 9 + 1, 8 * 27 + 3):
        data = rand(size, seed=size)
        root, blocks, _ = build(data, params)
        ref_root, ref_blocks, _ = reference_root(data, params)
        assert bytes(root) == ref_root, size
        assert blocks == ref_blocks, size
        assert root.hashfun.name == "sha3-256"


# ------------------------------------------------------------------ params


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chunk_size": 0},
        {"chunk_size": -1},
        {"chunk_size": dag.MAX_CHUNK_SIZE + 1},
        {"chunk_size": 2 << 20},
        {"cid_version": 2},
        {"cid_version": -1},
        {"max_links": 1},
        {"cid_version": 0, "hashfun": "sha3-256"},
    ],
)
def test_import_params_validation(kwargs):
    with pytest.raises(ValueError):
        ImportParams(**kwargs)


def test_import_params_limits_are_allowed():
    assert ImportParams(chunk_size=1).chunk_size == 1
    assert ImportParams(chunk_size=dag.MAX_CHUNK_SIZE).chunk_size == 1 << 20
    assert ImportParams().use_raw_leaves is True
    assert ImportParams(cid_version=0).use_raw_leaves is False
    assert ImportParams().max_links == 174
    assert ImportParams().chunk_size == 1 << 20


# ------------------------------------------------------------------ import + read round trips

CHUNK = 16


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK, 4 * CHUNK + 1, 16 * CHUNK, 16 * CHUNK + 1,
     64 * CHUNK, 64 * CHUNK + 5, 100 * CHUNK + 7],
)  # fmt: skip
@pytest.mark.parametrize("version", [0, 1])
async def test_import_file_and_read_back(size, version):
    params = ImportParams(chunk_size=CHUNK, max_links=4, cid_version=version)
    data = rand(size, seed=size)
    store = MemStore()
    result = await dag.import_file(store, io.BytesIO(data), params)
    ref_root, ref_blocks, ref_n = reference_root(data, params)
    assert bytes(result.cid) == ref_root
    assert result.size == size
    assert result.blocks == ref_n
    assert result.params == params
    assert store.flushes >= 1  # durable before anyone refers to the root
    for cid_bytes, block in ref_blocks.items():
        assert store.data[bytes(CID.decode(cid_bytes).digest)] == block
    assert await read_all(store, result.cid) == data
    assert await dag.file_size(store, result.cid) == size


async def test_import_file_from_path_into_flatfs(tmp_path):
    data = rand(50 * CHUNK + 3, seed=3)
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    store = dag.FlatFsBlockstore(tmp_path / "store")
    try:
        seen: list[int] = []
        params = ImportParams(chunk_size=CHUNK, max_links=4)
        result = await dag.import_file(store, path, params, progress=seen.append)
        assert bytes(result.cid) == reference_root(data, params)[0]
        assert sum(seen) == len(data)
        assert await read_all(store, result.cid) == data
        assert await read_all(store, result.cid, 17, 40) == data[17:57]
    finally:
        await store.aclose()


async def test_import_chunks_with_odd_pieces_equals_import_file():
    data = rand(37 * CHUNK + 9, seed=11)
    params = ImportParams(chunk_size=CHUNK, max_links=4)
    expected = await dag.import_file(MemStore(), io.BytesIO(data), params)
    rng = random.Random(5)

    async def pieces() -> AsyncIterator[bytes]:
        pos = 0
        while pos < len(data):
            n = rng.choice([0, 1, 3, 15, 16, 17, 33, 100])
            yield data[pos : pos + n]
            pos += n
            await trio.lowlevel.checkpoint()

    store = MemStore()
    result = await dag.import_chunks(store, pieces(), params)
    assert result.cid == expected.cid
    assert result.size == len(data)
    assert result.blocks == expected.blocks
    assert await read_all(store, result.cid) == data


async def test_import_chunks_empty_stream_is_the_empty_file():
    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover

    async def empties() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b""

    for source in (nothing(), empties()):
        result = await dag.import_chunks(MemStore(), source, ImportParams(cid_version=0))
        assert str(result.cid) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        assert result.size == 0


async def test_import_from_stream_that_returns_short_reads():
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.pos = data, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buf) -> int:
            n = min(len(buf), 5, len(self.data) - self.pos)
            buf[:n] = self.data[self.pos : self.pos + n]
            self.pos += n
            return n

    data = rand(20 * CHUNK + 1, seed=2)
    params = ImportParams(chunk_size=CHUNK, max_links=4)
    result = await dag.import_file(MemStore(), Trickle(data), params)
    assert bytes(result.cid) == reference_root(data, params)[0]


async def test_import_error_from_store_propagates_plainly():
    class Failing(MemStore):
        async def put(self, block: Block) -> None:
            raise dag.StoreError("disk full")

    with pytest.raises(dag.StoreError, match="disk full"):
        await dag.import_file(Failing(), io.BytesIO(rand(100)), ImportParams(chunk_size=CHUNK))


# ------------------------------------------------------------------ byte ranges


@pytest.mark.parametrize("version", [0, 1])
async def test_read_ranges(version):
    params = ImportParams(chunk_size=CHUNK, max_links=4, cid_version=version)
    size = 21 * CHUNK + 5  # depth 3 with a partial last chunk
    data = rand(size, seed=21)
    store = MemStore()
    result = await dag.import_file(store, io.BytesIO(data), params)
    offsets = sorted(
        {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK - 1, 4 * CHUNK, 16 * CHUNK, 16 * CHUNK + 1}
        | {size - 1, size, size + 1, size + 1000}
    )
    lengths = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 2, 17 * CHUNK, size, 10**9, None]
    for offset in offsets:
        for length in lengths:
            expected = data[offset:] if length is None else data[offset : offset + length]
            got = await read_all(store, result.cid, offset, length)
            assert got == expected, (offset, length)


async def test_read_range_yields_no_empty_pieces_and_fetches_only_what_it_needs():
    params = ImportParams(chunk_size=CHUNK, max_links=4)
    data = rand(64 * CHUNK, seed=64)

    class Counting(MemStore):
        def __init__(self) -> None:
            super().__init__()
            self.gets = 0

        async def get(self, cid: CID) -> bytes:
            self.gets += 1
            return await super().get(cid)

    store = Counting()
    result = await dag.import_file(store, io.BytesIO(data), params)
    store.gets = 0
    pieces = [p async for p in dag.read_file(store, result.cid, 5 * CHUNK + 3, CHUNK)]
    assert b"".join(pieces) == data[5 * CHUNK + 3 : 6 * CHUNK + 3]
    assert all(pieces)
    # root + one node per level (depth 3) + at most two leaves
    assert store.gets <= 1 + 2 + 2 + 1


async def test_read_negative_offset_or_length_is_refused():
    store = MemStore()
    result = await dag.import_file(store, io.BytesIO(b"abc"), ImportParams(chunk_size=CHUNK))
    with pytest.raises(ValueError):
        await read_all(store, result.cid, -1)
    with pytest.raises(ValueError):
        await read_all(store, result.cid, 0, -1)


async def test_read_missing_block_raises_block_not_found():
    store = MemStore()
    data = rand(10 * CHUNK, seed=10)
    params = ImportParams(chunk_size=CHUNK, max_links=4)
    result = await dag.import_file(store, io.BytesIO(data), params)
    leaf = CID("base32", 1, "raw", bytes([0x12, 32]) + hashlib.sha256(data[CHUNK:32]).digest())
    await store.delete(leaf)
    with pytest.raises(BlockNotFound):
        await read_all(store, result.cid)
    # a range that does not touch the missing leaf still reads
    assert await read_all(store, result.cid, 3 * CHUNK, CHUNK) == data[3 * CHUNK : 4 * CHUNK]


async def test_read_file_of_a_record_is_a_codec_error():
    store = MemStore()
    block = dag.record_block({"type": "asset"})
    await store.put(block)
    with pytest.raises(dag.CodecError):
        await read_all(store, block.cid)


# ------------------------------------------------------------------ memory

MIB = 1 << 20


def _write_random_file(path, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))  # 1 MiB writes


async def _peak_import(path, store_dir, *, gc_enabled: bool = True) -> tuple[int, dag.ImportResult]:
    store = dag.FlatFsBlockstore(store_dir, sync="never")
    try:
        gc.collect()
        if not gc_enabled:
            gc.disable()
        tracemalloc.start()
        try:
            result = await dag.import_file(store, path)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            gc.enable()
    finally:
        await store.aclose()
    return peak, result


async def _peaks(tmp_path, gc_enabled: bool) -> dict[int, int]:
    peaks = {}
    for size_mib in (16, 64):
        path = tmp_path / f"in{size_mib}.bin"
        _write_random_file(path, size_mib)
        peak, result = await _peak_import(
            path, tmp_path / f"store{size_mib}", gc_enabled=gc_enabled
        )
        assert result.size == size_mib * MIB
        assert result.blocks == size_mib + 1  # 1 MiB leaves under one root (< 174 links)
        peaks[size_mib] = peak
        path.unlink()
    return peaks


@pytest.mark.slow
async def test_import_memory_does_not_grow_with_file_size(tmp_path):
    peaks = await _peaks(tmp_path, gc_enabled=True)
    assert peaks[64] < 16 * MIB, peaks
    # scheduling moves the peak by a chunk or two; growth with size would be tens of MiB
    assert abs(peaks[64] - peaks[16]) < 8 * MIB, peaks


@pytest.mark.slow
async def test_import_memory_is_flat_without_the_cycle_collector(tmp_path):
    # Flat memory must not depend on the cyclic GC happening to run: every chunk must be freed
    # by reference counting once it has been stored.
    peaks = await _peaks(tmp_path, gc_enabled=False)
    assert peaks[64] < 16 * MIB, peaks
    assert abs(peaks[64] - peaks[16]) < 4 * MIB, peaks


def test_hashing_a_chunk_leaves_no_cyclic_garbage():
    """Block.encode/Block.checked must not keep the hashed bytes alive in reference cycles
    (multiformats' argument validation raises and catches TypeErrors whose tracebacks hold the
    caller's frames, and so the data, until the cycle collector runs)."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(16):
            Block.encode(os.urandom(MIB))
        after_encode = tracemalloc.get_traced_memory()[0]
        cid = Block.encode(b"x" * MIB).cid
        for _ in range(16):
            Block.checked(cid, b"x" * MIB)
        after_checked = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.enable()
    assert after_encode < 4 * MIB, f"{after_encode / MIB:.1f} MiB still held after Block.encode"
    assert after_checked < 6 * MIB, f"{after_checked / MIB:.1f} MiB still held after Block.checked"
