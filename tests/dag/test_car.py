"""CARv1 export (iter_car) and import (import_car) between FlatFs stores.

CAR bytes are parsed here with a small independent reader (varints, CID lengths) and the
expected block order is derived from the blocks' own bytes, not from dag.walk.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc

import dag_cbor
import pytest
import trio
from multiformats import CID

import dag
from dag import CarError, FlatFsBlockstore, ImportParams
from tests.harness.wire import read_uvarint, uvarint


def cid_length(section: bytes) -> int:
    if section[:2] == b"\x12\x20":
        return 34
    pos = 0
    for _ in range(3):  # version, codec, hash code
        _, pos = read_uvarint(section, pos)
    length, pos = read_uvarint(section, pos)
    return pos + length


def parse_car(car: bytes):
    """(header, [(cid_bytes, data, section_start, section_end)]) with offsets into ``car``."""
    hlen, pos = read_uvarint(car, 0)
    header = dag_cbor.decode(car[pos : pos + hlen])
    pos += hlen
    sections = []
    while pos < len(car):
        start = pos
        length, pos = read_uvarint(car, pos)
        body = car[pos : pos + length]
        n = cid_length(body)
        sections.append((body[:n], body[n:], start, pos + length))
        pos += length
    return header, sections


async def export(store, roots) -> bytes:
    return b"".join([piece async for piece in dag.iter_car(store, roots)])


async def chunks_of(data: bytes, size: int = 1 << 16):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def store_state(store) -> tuple[list[CID], list]:
    return [c async for c in store.cids()], await store.pins()


@pytest.fixture
async def source(tmp_path):
    store = FlatFsBlockstore(tmp_path / "source")
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def target_factory(tmp_path):
    made = []
    counter = iter(range(10**6))

    def make() -> FlatFsBlockstore:
        store = FlatFsBlockstore(tmp_path / f"target{next(counter)}")
        made.append(store)
        return store

    return make


@pytest.fixture
async def target(target_factory):
    store = target_factory()
    try:
        yield store
    finally:
        await store.aclose()


FILE_PARAMS = ImportParams(chunk_size=64, max_links=3)


async def make_file(store, size: int = 64 * 10 + 5, seed: bytes = b"") -> tuple[CID, bytes]:
    data = (seed + os.urandom(size))[:size]
    result = await dag.import_file(store, io.BytesIO(data), FILE_PARAMS)
    return result.cid, data


async def make_graph(store):
    """Records linking to each other and to a file; one block reachable twice."""
    file_cid, data = await make_file(store)
    asset = dag.record_block({"type": "asset", "file": file_cid, "title": "x"})
    effect = dag.record_block({"type": "effect", "code": os.urandom(16)})
    # key order matters: DAG-CBOR puts "b" before "aa" (length first)
    recipe = dag.record_block(
        {"type": "recipe", "b": effect.cid, "aa": asset.cid, "inputs": [asset.cid, file_cid]}
    )
    root = dag.record_block({"type": "job", "recipe": recipe.cid, "asset": asset.cid})
    await store.put_many([asset, effect, recipe, root])
    return root.cid, file_cid, data


def expected_order(blocks: dict[bytes, bytes], root: bytes) -> list[bytes]:
    """Depth-first, links in the order their bytes appear in the block, each block once."""
    seen: set[bytes] = set()
    order: list[bytes] = []

    def links(cid: bytes) -> list[bytes]:
        data = blocks[cid]
        found = [(data.find(other), other) for other in blocks if other != cid and other in data]
        return [other for _, other in sorted(found)]

    def visit(cid: bytes) -> None:
        if cid in seen:
            return
        seen.add(cid)
        order.append(cid)
        for link in links(cid):
            visit(link)

    visit(root)
    return order


# ---------------------------------------------------------------------------- round trips


async def test_unixfs_file_round_trip(source, target):
    root, data = await make_file(source, 64 * 30 + 1)
    car = await export(source, [root])
    header, sections = parse_car(car)
    assert header == {"roots": [root], "version": 1}
    assert sections[0][0] == bytes(root)
    for cid_bytes, block, _, _ in sections:
        assert dag.Block.checked(CID.decode(cid_bytes), block)

    result = await dag.import_car(target, chunks_of(car, 100))
    assert result.roots == [root]
    assert result.blocks == len(sections)
    assert result.new_blocks == len(sections)
    got = b"".join([p async for p in dag.read_file(target, root)])
    assert got == data
    assert [p.cid for p in await target.pins()] == [root]
    assert all(p.recursive for p in await target.pins())
    # exporting again from the target gives the very same CAR
    assert await export(target, [root]) == car


async def test_dag_cbor_graph_round_trip_and_order(source, target):
    root, file_cid, data = await make_graph(source)
    car = await export(source, [root])
    header, sections = parse_car(car)
    assert header["roots"] == [root]
    blocks = {cid: block for cid, block, _, _ in sections}
    order = [cid for cid, *_ in sections]
    # each block once, though asset and file are reachable along several paths
    assert len(order) == len(set(order))
    assert order == expected_order(blocks, bytes(root))
    assert order[0] == bytes(root)
    # every block of the source is in it (the source holds nothing else)
    assert {bytes(c.digest) for c in [CID.decode(x) for x in order]} == {
        bytes(c.digest) async for c in source.cids()
    }

    # feed one byte at a time: the reader must cope with any split
    async def bytewise():
        for i in range(len(car)):
            yield car[i : i + 1]

    result = await dag.import_car(target, bytewise())
    assert result.roots == [root]
    assert result.blocks == len(order)
    for cid, block in blocks.items():
        assert await target.get(CID.decode(cid)) == block
    assert b"".join([p async for p in dag.read_file(target, file_cid)]) == data
    assert await export(target, [root]) == car


async def test_order_of_a_known_small_graph(source):
    leaf1, leaf2 = dag.Block.encode(b"one"), dag.Block.encode(b"two")
    mid = dag.record_block({"l": [leaf2.cid, leaf1.cid]})
    root = dag.record_block({"b": leaf1.cid, "aa": mid.cid})  # encoded as b, then aa
    await source.put_many([leaf1, leaf2, mid, root])
    _, sections = parse_car(await export(source, [root.cid]))
    got = [cid for cid, *_ in sections]
    assert got == [bytes(c) for c in (root.cid, leaf1.cid, mid.cid, leaf2.cid)]


async def test_multiple_roots_share_blocks_once(source, target):
    shared = dag.Block.encode(os.urandom(20))
    r1 = dag.record_block({"x": shared.cid})
    r2 = dag.record_block({"y": shared.cid, "z": 1})
    await source.put_many([shared, r1, r2])
    car = await export(source, [r1.cid, r2.cid])
    header, sections = parse_car(car)
    assert header["roots"] == [r1.cid, r2.cid]
    assert [c for c, *_ in sections] == [bytes(r1.cid), bytes(shared.cid), bytes(r2.cid)]
    result = await dag.import_car(target, chunks_of(car))
    assert {p.cid for p in await target.pins()} == {r1.cid, r2.cid}
    assert result.new_blocks == 3


async def test_duplicate_sections_in_a_car_are_stored_once(target):
    block = dag.Block.encode(os.urandom(50))
    car = dag.car.encode_header([block.cid]) + dag.car.encode_section(block.cid, block.data) * 3
    result = await dag.import_car(target, chunks_of(car))
    assert result.blocks == 3
    assert result.new_blocks == 1
    assert len([c async for c in target.cids()]) == 1


async def test_import_without_pin(source, target):
    root, _ = await make_file(source)
    car = await export(source, [root])
    await dag.import_car(target, chunks_of(car), pin=False)
    assert await target.pins() == []
    assert await target.has(root)


async def test_import_from_file_chunks(source, target, tmp_path):
    root, data = await make_file(source, 64 * 12)
    path = tmp_path / "x.car"
    path.write_bytes(await export(source, [root]))
    result = await dag.import_car(target, dag.file_chunks(path, size=7))
    assert result.roots == [root]
    assert b"".join([p async for p in dag.read_file(target, root)]) == data


def test_car_reader_header():
    cid = dag.Block.encode(b"x").cid
    header = dag_cbor.encode({"roots": [cid], "version": 1})
    reader = dag.CarReader()
    assert reader.feed(uvarint(len(header)) + header[:5]) == []
    assert reader.roots is None
    assert reader.feed(header[5:]) == []
    assert reader.roots == [cid]
    reader.finish()


# ---------------------------------------------------------------------------- broken CARs


async def assert_rejected(store, car: bytes, match: str | None = None) -> CarError:
    with pytest.raises(CarError) as info:
        await dag.import_car(store, chunks_of(car, 37))
    assert "\n" not in str(info.value)
    if match:
        assert match in str(info.value)
    await assert_left_for_gc(store)
    return info.value


async def assert_left_for_gc(store) -> None:
    """A failed import pins nothing and deletes nothing itself (another writer may rely on the
    blocks: dag.car's docstring); what it wrote is garbage that the next collection removes."""
    cids, pins = await store_state(store)
    assert pins == [], "a failed import must not pin"
    age(store)
    report = await store.collect_garbage(grace_s=60)
    assert report.removed == len(cids)
    assert await store_state(store) == ([], [])


@pytest.mark.slow
async def test_truncated_car_at_many_cut_points(source, target):
    root, _file_cid, _ = await make_graph(source)
    car = await export(source, [root])
    header_len, pos = read_uvarint(car, 0)
    header_end = pos + header_len
    _, sections = parse_car(car)
    assert len(sections) >= 8
    cuts = {0, 1, pos, pos + 3, header_end - 1}  # no header / inside the header
    for _cid, block, start, end in sections:
        _length, body = read_uvarint(car, start)
        assert body - start >= 1
        cuts |= {
            start + 1,  # inside a multi-byte section varint, or right after a 1-byte one
            body + 1,  # inside the CID
            body + 10,
            body + len(_cid) - 1,
            body + len(_cid) + len(block) // 2,  # inside the block data
            end - 1,  # one byte short
        }
    multi_byte = [s for _, _, s, _ in sections if read_uvarint(car, s)[1] - s > 1]
    assert multi_byte, "the graph should have a section longer than 127 bytes"
    cuts = sorted(c for c in cuts if 0 <= c < len(car))
    for cut in cuts:
        with pytest.raises(CarError):
            await dag.import_car(target, chunks_of(car[:cut], 13))
        await assert_left_for_gc(target)


@pytest.mark.slow
async def test_truncated_at_a_section_boundary_is_rejected(source, target):
    """A CAR cut between two sections is still incomplete: importing it must not pin (or keep)
    a root whose DAG is missing blocks."""
    root, _file_cid, _ = await make_graph(source)
    car = await export(source, [root])
    _, sections = parse_car(car)
    for _cid, _block, _start, end in sections[:-1]:
        await assert_rejected(target, car[:end])


async def test_flipped_byte_in_a_block(source, target):
    root, _file_cid, _ = await make_graph(source)
    car = bytearray(await export(source, [root]))
    _, sections = parse_car(bytes(car))
    cid_bytes, block, _start, end = sections[len(sections) // 2]
    car[end - len(block) // 2 - 1] ^= 0x01
    error = await assert_rejected(target, bytes(car))
    assert CID.decode(cid_bytes).encode("base32") in str(error)


async def test_flipped_byte_in_the_last_block_pins_nothing(source, target):
    root, _ = await make_file(source, 64 * 20)
    car = bytearray(await export(source, [root]))
    car[-1] ^= 0x80
    await assert_rejected(target, bytes(car), "does not match")


async def test_failed_import_keeps_blocks_that_were_there_before(source, target):
    root, _ = await make_file(source, 64 * 20)
    car = await export(source, [root])
    _, sections = parse_car(car)
    existing = dag.Block.checked(CID.decode(sections[2][0]), sections[2][1])
    await target.put(existing)
    await target.pin(existing.cid, recursive=False)
    other = dag.Block.encode(b"unrelated")
    await target.put(other)
    await target.pin(other.cid)
    with pytest.raises(CarError) as info:
        await dag.import_car(target, chunks_of(car[:-3]))
    assert "go at the next garbage collection" in str(info.value)
    assert {bytes(p.cid.digest) for p in await target.pins()} == {
        bytes(existing.cid.digest),
        bytes(other.cid.digest),
    }
    age(target)
    assert (await target.collect_garbage(grace_s=60)).removed > 0
    cids = {bytes(c.digest) async for c in target.cids()}
    assert cids == {bytes(existing.cid.digest), bytes(other.cid.digest)}


async def test_failed_import_never_deletes_a_block_another_writer_pinned(source, target):
    """Finding 2 of issue 16, in-process: while a CAR streams in, another writer stores and
    pins the same DAG; then the CAR turns out corrupt. The pinned DAG must stay whole."""
    root, data = await make_file(source, 64 * 20)
    car = await export(source, [root])
    _, sections = parse_car(car)
    send, receive = trio.open_memory_channel[bytes](0)

    async def feed() -> None:
        async with send:
            await send.send(car)  # every valid section
            await wait_for_blocks(target, [CID.decode(c) for c, *_ in sections])
            await dag.import_file(target, io.BytesIO(data), FILE_PARAMS)  # the other writer
            await target.pin(root)
            corrupt = bytes(sections[0][0]) + b"not the root block"
            await send.send(uvarint(len(corrupt)) + corrupt)

    async def chunks():
        async for chunk in receive:
            yield chunk

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        with pytest.raises(CarError, match="does not match"):
            await dag.import_car(target, chunks())
    assert [p.cid for p in await target.pins()] == [root]
    assert b"".join([c async for c in dag.read_file(target, root)]) == data
    report = await target.verify()
    assert report.ok and report.pins_checked == 1
    age(target)
    await target.collect_garbage(grace_s=60)
    assert b"".join([c async for c in dag.read_file(target, root)]) == data


def age(store: FlatFsBlockstore, seconds: float = 3600.0) -> None:
    """Make every block file older than a collection's grace period."""
    old = time.time() - seconds
    for path in store.blocks_dir.glob("*/*.data"):
        os.utime(path, (old, old))


async def wait_for_blocks(store, cids, timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        while not all([await store.has(cid) for cid in cids]):
            await trio.sleep(0.01)


async def test_car_without_its_root(source, target):
    root, _ = await make_file(source, 64 * 10)
    car = await export(source, [root])
    hlen, pos = read_uvarint(car, 0)
    without_root = car[: pos + hlen] + b"".join(
        car[s:e] for c, _, s, e in parse_car(car)[1] if c != bytes(root)
    )
    await assert_rejected(target, without_root, root.encode("base32"))


async def test_car_with_an_unrelated_root(source, target):
    root, _ = await make_file(source, 64 * 4)
    car = await export(source, [root])
    _, sections = parse_car(car)
    stranger = dag.Block.encode(b"not in the car").cid
    header = dag_cbor.encode({"roots": [stranger], "version": 1})
    body = b"".join(car[s:e] for _, _, s, e in sections)
    await assert_rejected(target, uvarint(len(header)) + header + body)


async def test_carv2_is_refused_clearly(target):
    pragma = dag_cbor.encode({"version": 2})
    car = uvarint(len(pragma)) + pragma + bytes(40) + b"\x00" * 20
    error = await assert_rejected(target, car)
    assert "CARv2" in str(error) or "version 2" in str(error)


@pytest.mark.parametrize(
    "header",
    [
        {"roots": [], "version": 3},
        {"roots": "bafy", "version": 1},
        {"roots": [b"\x01"], "version": 1},
        {"version": 1},
        {"roots": []},
        [1],
    ],
)
async def test_bad_headers(target, header):
    raw = dag_cbor.encode(header)
    await assert_rejected(target, uvarint(len(raw)) + raw)


async def test_header_version_true_is_not_version_1(target):
    block = dag.Block.encode(b"x")
    raw = dag_cbor.encode({"roots": [block.cid], "version": True})
    car = uvarint(len(raw)) + raw + dag.car.encode_section(block.cid, block.data)
    await assert_rejected(target, car)


async def test_header_that_is_not_dag_cbor(target):
    await assert_rejected(target, uvarint(5) + b"\xff\xff\xff\xff\xff")


@pytest.mark.parametrize("length", [(4 << 20) + 2048, 1 << 32, 1 << 40, (1 << 63) - 1])
async def test_oversized_section_length_is_refused_without_allocating(target, length):
    block = dag.Block.encode(b"x")
    car = dag.car.encode_header([block.cid]) + uvarint(length) + bytes(bytes(block.cid)) + b"ab"
    tracemalloc.start()
    try:
        await assert_rejected(target, car)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


async def test_oversized_header_is_refused(target):
    await assert_rejected(target, uvarint(1 << 40) + b"\xa0")


async def test_overlong_varint_is_refused(target):
    block = dag.Block.encode(b"x")
    car = dag.car.encode_header([block.cid]) + b"\xff" * 11 + b"\x01"
    await assert_rejected(target, car)


async def test_empty_section_is_refused(target):
    block = dag.Block.encode(b"x")
    car = dag.car.encode_header([block.cid]) + b"\x00" + dag.car.encode_section(block.cid, b"x")
    await assert_rejected(target, car)


async def test_section_with_a_garbage_cid(target):
    block = dag.Block.encode(b"x")
    garbage = b"\x02\x55\x12\x20" + hashlib.sha256(b"x").digest() + b"x"  # CID version 2
    car = dag.car.encode_header([block.cid]) + uvarint(len(garbage)) + garbage
    await assert_rejected(target, car)


async def test_cidv0_sections(target):
    leaf = b"\x0a\x0c\x08\x02\x12\x06hello\n\x18\x06"  # `echo hello | ipfs add`
    cid = CID.decode("QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN")
    car = dag.car.encode_header([cid]) + uvarint(34 + len(leaf)) + bytes(cid) + leaf
    result = await dag.import_car(target, chunks_of(car))
    assert result.roots == [cid]
    assert b"".join([p async for p in dag.read_file(target, cid)]) == b"hello\n"
    bad = bytearray(car)
    bad[-3] ^= 1
    fresh_error = None
    try:
        await dag.import_car(target, chunks_of(bytes(bad)))
    except CarError as exc:
        fresh_error = exc
    assert fresh_error is not None
    assert str(cid) in str(fresh_error) or cid.encode("base32") in str(fresh_error)
