"""Garbage collection, holds and sizes in the embedded store (dag.gc, FlatFsBlockstore).

Every test uses a real FlatFsBlockstore in tmp_path and real UnixFS files cut into 256-byte
chunks with 8 links per node, so a few KiB make a DAG of several levels. Blocks are made "old"
by setting their files' mtime back (the grace period compares mtimes), and a collection is
driven mid-sweep through the store's per-batch test hook, never by sleeping.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sqlite3
import time

import pytest
import trio

from dag import (
    CID,
    Block,
    Blockstore,
    FlatFsBlockstore,
    GcReport,
    ImportParams,
    KuboBlockstore,
    Pin,
    StoreError,
    import_chunks,
    import_file,
    read_file,
    walk_dag,
)
from dag.cids import multihash_key

PARAMS = ImportParams(chunk_size=256, max_links=8)


class Dag:
    def __init__(self, root: CID, data: bytes, sizes: dict[bytes, int]) -> None:
        self.root, self.data, self.sizes = root, data, sizes

    @property
    def keys(self) -> set[bytes]:
        return set(self.sizes)


async def add(store: Blockstore, data: bytes | None = None, size: int = 3000) -> Dag:
    data = os.urandom(size) if data is None else data
    result = await import_file(store, io.BytesIO(data), PARAMS)
    sizes = {multihash_key(c): len(b) async for c, b in walk_dag(store, [result.cid])}
    assert len(sizes) > 10
    return Dag(result.cid, data, sizes)


def files(store: FlatFsBlockstore) -> dict[bytes, int]:
    """Multihash key -> size of every block file, read from the disk."""
    out = {}
    for path in (store.root / "blocks").glob("*/*.data"):
        key = path.name.removesuffix(".data")  # base32 of the multihash, unpadded
        out[base64.b32decode(key + "=" * (-len(key) % 8))] = path.stat().st_size
    return out


def age(store: FlatFsBlockstore, seconds: float = 3600.0) -> None:
    old = time.time() - seconds
    for path in (store.root / "blocks").glob("*/*.data"):
        os.utime(path, (old, old))


def invariant(report: GcReport) -> None:
    assert report.examined == report.marked + report.removed + report.kept_young
    assert report.seconds >= 0


async def read_all(store: Blockstore, root: CID) -> bytes:
    return b"".join([piece async for piece in read_file(store, root)])


async def test_unpinned_dag_is_removed_and_its_bytes_reported_exactly(store):
    dag = await add(store)
    assert files(store) == dag.sizes
    age(store)
    report = await store.collect_garbage(grace_s=0)
    assert files(store) == {}
    assert report.removed == report.examined == len(dag.sizes)
    assert report.freed_bytes == sum(dag.sizes.values())
    assert (report.marked, report.kept_young) == (0, 0)
    assert report.to_json() == {
        "examined": len(dag.sizes),
        "marked": 0,
        "removed": len(dag.sizes),
        "freed_bytes": sum(dag.sizes.values()),
        "kept_young": 0,
        "seconds": report.seconds,
    }


async def test_recursive_pin_keeps_its_whole_dag_and_pins_survive(store):
    kept, gone = await add(store), await add(store)
    await store.pin(kept.root, reason="explicit")
    await store.pin(kept.root, reason="popular")
    pins_before = await store.pins()
    age(store)
    report = await store.collect_garbage(grace_s=0)
    invariant(report)
    assert files(store) == kept.sizes
    assert report.marked == len(kept.sizes)
    assert report.removed == len(gone.sizes)
    assert report.freed_bytes == sum(gone.sizes.values())
    assert await store.pins() == pins_before == [Pin(kept.root, True, ("explicit", "popular"))]
    assert await read_all(store, kept.root) == kept.data


async def test_direct_pin_keeps_only_its_block(store):
    dag = await add(store)
    await store.pin(dag.root, recursive=False)
    age(store)
    report = await store.collect_garbage(grace_s=0)
    assert set(files(store)) == {multihash_key(dag.root)}
    assert (report.marked, report.removed) == (1, len(dag.sizes) - 1)


async def test_keep_is_recursive_and_keep_shallow_keeps_the_block_only(store):
    deep, shallow, gone = await add(store), await add(store), await add(store)
    age(store)
    report = await store.collect_garbage(keep=[deep.root], keep_shallow=[shallow.root], grace_s=0)
    invariant(report)
    assert set(files(store)) == deep.keys | {multihash_key(shallow.root)}
    assert report.removed == len(shallow.sizes) - 1 + len(gone.sizes)


async def test_block_younger_than_grace_is_kept_then_removed_with_grace_0(store):
    block = Block.encode(os.urandom(500))
    await store.put(block)
    report = await store.collect_garbage()  # default grace: 600 s
    assert (report.kept_young, report.removed) == (1, 0)
    age(store, 10)
    assert (await store.collect_garbage(grace_s=60)).kept_young == 1
    assert await store.has(block.cid)
    report = await store.collect_garbage(grace_s=0)
    assert (report.removed, report.freed_bytes, report.kept_young) == (1, 500, 0)
    assert not await store.has(block.cid)


async def test_put_of_an_existing_block_refreshes_its_mtime(store):
    again, other = Block.encode(os.urandom(300)), Block.encode(os.urandom(300))
    await store.put_many([again, other])
    age(store)
    await store.put(again)  # dedup: nothing written, but it counts as new
    assert store.path_for(again.cid).stat().st_mtime > time.time() - 60
    report = await store.collect_garbage(grace_s=60)
    assert (report.removed, report.kept_young) == (1, 1)
    assert await store.has(again.cid)
    assert not await store.has(other.cid)


async def test_hold_protects_an_unpinned_dag_while_held(store):
    held, gone = await add(store), await add(store)
    age(store)
    with contextlib.ExitStack() as outer:
        outer.enter_context(store.hold(held.root))
        with store.hold(held.root, gone.root):  # a count per root
            await store.collect_garbage(grace_s=0)
        assert files(store) == held.sizes | gone.sizes
        report = await store.collect_garbage(grace_s=0)
        assert files(store) == held.sizes
        assert report.removed == len(gone.sizes)
    report = await store.collect_garbage(grace_s=0)
    assert files(store) == {}
    assert report.removed == len(held.sizes)


async def test_root_held_mid_sweep_is_protected_from_then_on(store):
    dags = [await add(store) for _ in range(5)]
    total = sum(len(d.keys) for d in dags)
    age(store)
    store._gc_batch = 4
    holds = contextlib.ExitStack()
    chosen: list[Dag] = []
    present_when_held: set[bytes] = set()

    def hold_an_intact_dag() -> None:  # runs in the trio thread, like a gateway request
        present_when_held.update(files(store))
        # batch 0 removed 4 blocks, so at least one of the 5 DAGs is still whole
        chosen.append(next(d for d in dags if d.keys <= present_when_held))
        holds.enter_context(store.hold(chosen[0].root))

    def before_batch(index: int) -> None:  # runs in the collection's worker thread
        if index == 1:
            trio.from_thread.run_sync(hold_an_intact_dag)

    store._before_batch = before_batch
    with holds:
        report = await store.collect_garbage(grace_s=0)
        invariant(report)
        assert len(present_when_held) == total - 4  # the sweep was under way
        assert files(store) == chosen[0].sizes  # and removed nothing of it afterwards
        assert report.marked == len(chosen[0].keys)
        assert report.removed == total - len(chosen[0].keys)
    store._before_batch = None
    await store.collect_garbage(grace_s=0)
    assert files(store) == {}


@pytest.mark.slow
async def test_reading_held_unpinned_files_during_gc_never_fails(store):
    readers = [await add(store, size=20_000), await add(store, size=20_000)]
    garbage = [await add(store) for _ in range(3)]
    await store.pin(garbage[0].root)
    await store.unpin(garbage[0].root)
    age(store)
    store._gc_batch = 8
    done = False
    reads = [0, 0]
    read_done = trio.Event()

    async def reader(n: int, holding: contextlib.AbstractContextManager[None]) -> None:
        nonlocal read_done
        with holding:
            while not done:
                assert await read_all(store, readers[n].root) == readers[n].data
                reads[n] += 1
                read_done.set()
                read_done = trio.Event()

    async def wait_for_a_read() -> None:
        await read_done.wait()

    store._before_batch = lambda index: trio.from_thread.run(wait_for_a_read)
    async with trio.open_nursery() as nursery:
        for n, dag in enumerate(readers):
            nursery.start_soon(reader, n, store.hold(dag.root))
        await trio.testing.wait_all_tasks_blocked()
        report = await store.collect_garbage(grace_s=0)
        done = True
    invariant(report)
    batches = -(-sum(len(g.keys) for g in garbage) // 8)
    assert sum(reads) >= batches
    assert report.removed == sum(len(g.keys) for g in garbage)
    assert set(files(store)) == readers[0].keys | readers[1].keys
    store._before_batch = None
    await store.collect_garbage(grace_s=0)
    assert files(store) == {}


async def test_a_pin_made_during_a_collection_is_honoured(store):
    pinned, gone = await add(store), await add(store)
    age(store)
    store._gc_batch = 2

    def before_batch(index: int) -> None:
        if index == 0:
            trio.from_thread.run(store.pin, pinned.root)

    store._before_batch = before_batch
    report = await store.collect_garbage(grace_s=0)
    assert files(store) == pinned.sizes
    assert report.removed == len(gone.sizes)


async def test_collections_run_one_after_the_other(store):
    dag = await add(store)
    await store.pin((await add(store)).root)
    age(store)
    reports: list[GcReport] = []

    async def collect() -> None:
        reports.append(await store.collect_garbage(grace_s=0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect)
        nursery.start_soon(collect)
    first, second = reports
    assert first.removed == len(dag.sizes)
    assert (second.examined, second.removed) == (first.examined - first.removed, 0)


async def test_cancelled_collection_stops_between_batches(store):
    dag = await add(store)
    age(store)
    store._gc_batch = 3
    with trio.CancelScope() as scope:
        store._before_batch = lambda index: (
            trio.from_thread.run_sync(scope.cancel) if index == 1 else None
        )
        await store.collect_garbage(grace_s=0)
    assert scope.cancelled_caught
    assert len(files(store)) == len(dag.sizes) - 3
    store._before_batch = None
    assert (await store.collect_garbage(grace_s=0)).removed == len(dag.sizes) - 3


async def test_unreadable_reachable_block_stops_gc_before_removing_anything(store):
    bad = Block.encode(b"\xff\x00 not dag-pb", "dag-pb")
    junk = Block.encode(os.urandom(100))
    await store.put_many([bad, junk])
    await store.pin(bad.cid)
    age(store)
    with pytest.raises(StoreError, match="cannot follow the links"):
        await store.collect_garbage(grace_s=0)
    assert await store.has(junk.cid)
    with pytest.raises(StoreError, match="grace period"):
        await store.collect_garbage(grace_s=-1)


async def test_measure_counts_shared_blocks_once_and_missing_ones(store):
    common = os.urandom(2048)  # 8 chunks: the same first leaves and first parent
    a = await add(store, common + os.urandom(1024))
    b = await add(store, common + os.urandom(1024))
    assert len(a.keys & b.keys) == 9
    union = a.sizes | b.sizes
    whole = await store.measure(a.root)
    assert (whole.blocks, whole.bytes, whole.missing) == (len(a.sizes), sum(a.sizes.values()), 0)
    seen: set[bytes] = set()
    first = await store.measure(a.root, seen=seen)
    second = await store.measure(b.root, seen=seen)
    assert first.blocks + second.blocks == len(union)
    assert first.bytes + second.bytes == sum(union.values())
    assert seen == set(union)
    assert (second.blocks, second.missing) == (len(b.sizes) - 9, 0)
    root_only = await store.measure(a.root, recursive=False)
    assert (root_only.blocks, root_only.bytes) == (1, a.sizes[multihash_key(a.root)])
    leaf = [c async for c, _ in walk_dag(store, [a.root]) if c.codec.name == "raw"][-1]
    await store.delete(leaf)
    partial = await store.measure(a.root)
    assert (partial.blocks, partial.missing) == (len(a.sizes) - 1, 1)
    assert partial.bytes == sum(a.sizes.values()) - a.sizes[multihash_key(leaf)]
    assert await Blockstore.measure(store, a.root) == partial  # the generic walk agrees
    gone = await store.measure(Block.encode(b"absent", "dag-pb").cid)
    assert (gone.blocks, gone.bytes, gone.missing) == (0, 0, 1)


async def test_usage_matches_the_block_files(store):
    await add(store)

    async def chunks():
        yield os.urandom(5000)

    await import_chunks(store, chunks(), PARAMS)
    on_disk = files(store)
    usage = await store.usage()
    assert (usage.blocks, usage.bytes) == (len(on_disk), sum(on_disk.values()))
    assert await Blockstore.usage(store) == usage


async def test_old_pins_table_becomes_local_pins_that_gc_keeps(tmp_path):
    store = FlatFsBlockstore(tmp_path / "repo")
    kept, gone = await add(store), await add(store)
    await store.aclose()
    conn = sqlite3.connect(tmp_path / "repo" / "pins.db")
    with conn:  # the one-reason table of earlier versions
        conn.execute("drop table pin_reasons")
        conn.execute("create table pins (cid text primary key, recursive integer, created text)")
        conn.execute("insert into pins values (?, 1, '2024-01-01T00:00:00Z')", [str(kept.root)])
    conn.close()
    store = FlatFsBlockstore(tmp_path / "repo")
    try:
        assert await store.pins() == [Pin(kept.root, True, ("local",))]
        age(store)
        report = await store.collect_garbage(grace_s=0)
        assert files(store) == kept.sizes
        assert report.removed == len(gone.sizes)
    finally:
        await store.aclose()


async def test_a_kubo_store_is_collected_by_kubo():
    store = KuboBlockstore("http://127.0.0.1:9")  # never contacted
    try:
        with store.hold(Block.encode(b"x").cid):
            pass
        with pytest.raises(StoreError, match="ipfs repo gc"):
            await store.collect_garbage()
    finally:
        await store.aclose()
