"""FlatFsBlockstore: the generic Blockstore contract plus flat-file specifics."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys

import pytest
from multiformats import CID

import dag
from dag import BlockCorrupt, FlatFsBlockstore
from tests.harness.blockstore_contract import BlockstoreContract, random_block, random_pb_block


class TestFlatFsContract(BlockstoreContract):
    exclusive = True
    delete_pinned = True

    @pytest.fixture(params=["batch", "always", "never"])
    async def store(self, request, tmp_path):
        store = FlatFsBlockstore(tmp_path / "repo", sync=request.param)
        try:
            yield store
        finally:
            await store.aclose()


@pytest.fixture
async def flatfs(tmp_path):
    store = FlatFsBlockstore(tmp_path / "repo")
    try:
        yield store
    finally:
        await store.aclose()


def _kubo_key(data: bytes) -> str:
    """Kubo's flatfs key: base32 (RFC 4648, upper case, no padding) of the sha2-256 multihash."""
    multihash = b"\x12\x20" + hashlib.sha256(data).digest()
    return base64.b32encode(multihash).decode().rstrip("=")


def _block_files(root) -> list:
    return sorted(p for p in (root / "blocks").rglob("*") if p.is_file())


async def test_layout_is_one_file_per_multihash_sharded_next_to_last_2(flatfs):
    block = random_block(123)
    await flatfs.put(block)
    key = _kubo_key(block.data)
    assert key.startswith("CIQ")
    expected = flatfs.root / "blocks" / key[-3:-1] / f"{key}.data"
    assert expected.read_bytes() == block.data
    assert flatfs.path_for(block.cid) == expected
    assert _block_files(flatfs.root) == [expected]


async def test_no_temp_files_left_after_put(flatfs):
    blocks = [random_block(n) for n in (0, 1, 4096, 300_000)]
    await flatfs.put(blocks[0])
    await flatfs.put_many(blocks[1:])
    await flatfs.put_many(blocks)  # again: already there
    await flatfs.flush()
    files = _block_files(flatfs.root)
    assert not [p for p in files if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert len(files) == len(blocks)


async def test_raw_and_dag_pb_views_share_one_file(flatfs):
    block = random_pb_block()
    await flatfs.put(block)
    raw_view = CID("base32", 1, "raw", block.cid.digest)
    v0_view = CID("base58btc", 0, "dag-pb", block.cid.digest)
    assert raw_view != block.cid
    for view in (raw_view, v0_view, block.cid):
        assert await flatfs.has(view)
        assert await flatfs.get(view) == block.data
    assert flatfs.path_for(raw_view) == flatfs.path_for(block.cid)
    listed = [cid async for cid in flatfs.cids()]
    assert len(listed) == 1
    assert bytes(listed[0].digest) == bytes(block.cid.digest)
    # cids() reports CIDv1 raw, since only the multihash is known
    assert listed[0] == raw_view
    # putting the raw view of the same bytes stores nothing new
    await flatfs.put(dag.Block.encode(block.data, "raw"))
    assert len(_block_files(flatfs.root)) == 1
    # deleting one view deletes the block for all of them
    await flatfs.delete(raw_view)
    assert not await flatfs.has(block.cid)


def _flip_byte_on_disk(store: FlatFsBlockstore, cid: CID, index: int = 0) -> None:
    path = store.path_for(cid)
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


async def test_corrupted_block_file_is_detected(flatfs):
    good, bad = random_block(500), random_block(500)
    await flatfs.put_many([good, bad])
    _flip_byte_on_disk(flatfs, bad.cid, 250)

    with pytest.raises(BlockCorrupt) as info:
        await flatfs.get(bad.cid)
    assert isinstance(info.value, dag.DagError)
    assert bad.cid.encode("base32") in str(info.value)
    assert "\n" not in str(info.value)
    assert await flatfs.get(good.cid) == good.data

    report = await flatfs.verify()
    assert not report.ok
    assert report.checked == 2
    assert len(report.bad) == 1
    assert dag.parse_cid(report.bad[0]).digest == bad.cid.digest
    assert flatfs.path_for(bad.cid).exists()  # verify alone does not delete

    repaired = await flatfs.verify(repair=True)
    assert len(repaired.bad) == 1
    assert not flatfs.path_for(bad.cid).exists()
    assert not await flatfs.has(bad.cid)
    assert await flatfs.get(good.cid) == good.data
    final = await flatfs.verify()
    assert final.ok and final.checked == 1


async def test_truncated_block_file_is_corrupt(flatfs):
    block = random_block(500)
    await flatfs.put(block)
    path = flatfs.path_for(block.cid)
    path.write_bytes(block.data[:100])
    with pytest.raises(BlockCorrupt):
        await flatfs.get(block.cid)
    # putting the good block again repairs a copy whose size differs
    await flatfs.put(block)
    assert await flatfs.get(block.cid) == block.data


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_stale_temp_files_of_dead_writers_are_removed_on_open(tmp_path):
    store = FlatFsBlockstore(tmp_path / "repo")
    block = random_block()
    await store.put(block)
    await store.aclose()
    shard = store.path_for(block.cid).parent
    name = store.path_for(block.cid).name
    dead = shard / f".{name}.{_dead_pid()}.12345.tmp"
    alive = shard / f".{name}.{os.getpid()}.12345.tmp"
    dead.write_bytes(b"half a blo")
    alive.write_bytes(b"being written")

    reopened = FlatFsBlockstore(tmp_path / "repo")
    try:
        assert not dead.exists()
        assert alive.exists()  # a live writer's temp file is left alone
        assert reopened.removed_temp_files == 1
        assert await reopened.get(block.cid) == block.data
        listed = [cid async for cid in reopened.cids()]
        assert len(listed) == 1  # temp files are never listed as blocks
        report = await reopened.verify()
        assert report.ok and report.checked == 1
    finally:
        await reopened.aclose()


async def test_pins_and_blocks_persist_across_reopening(tmp_path):
    store = FlatFsBlockstore(tmp_path / "repo")
    a, b = random_block(), random_block()
    record = dag.record_block({"file": a.cid})
    await store.put_many([a, b, record])
    await store.pin(record.cid)
    await store.pin(b.cid, recursive=False)
    await store.aclose()

    again = FlatFsBlockstore(tmp_path / "repo")
    try:
        pins = {p.cid: p.recursive for p in await again.pins()}
        assert pins == {record.cid: True, b.cid: False}
        for block in (a, b, record):
            assert await again.get(block.cid) == block.data
        await again.unpin(b.cid)
    finally:
        await again.aclose()

    third = FlatFsBlockstore(tmp_path / "repo")
    try:
        assert [p.cid for p in await third.pins()] == [record.cid]
    finally:
        await third.aclose()


async def test_cidv0_pin_keeps_its_form(flatfs):
    block = random_pb_block(version=0)
    await flatfs.put(block)
    await flatfs.pin(block.cid)
    pins = await flatfs.pins()
    assert [p.cid for p in pins] == [block.cid]
    assert str(pins[0].cid).startswith("Qm")
