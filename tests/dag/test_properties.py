"""Property tests (hypothesis): the decoders of untrusted bytes fail only with their own error
types, and what is imported reads back the same in any range."""

from __future__ import annotations

import contextlib

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dag
from dag import Block, CarReader, FileBuilder, ImportParams
from dag.dagpb import UnixFSData, decode_node
from tests.harness.wire import uvarint

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class MemoryBlocks:
    """Blocks in a dict, with the one call the reader makes (``get``): a stand-in for speed,
    since hypothesis runs hundreds of examples; the real stores pass the contract elsewhere."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}

    async def get(self, cid):
        return Block.checked(cid, self.blocks[bytes(cid.digest)]).data


@FAST
@given(st.binary(max_size=300))
def test_car_reader_fails_only_with_car_error(data):
    reader = CarReader()
    try:
        reader.feed(data)
        reader.finish()
    except dag.CarError:
        pass


@FAST
@given(st.binary(max_size=200))
def test_car_reader_on_sections_after_a_valid_header(data):
    reader = CarReader()
    block = Block.encode(b"x")
    try:
        reader.feed(dag.car.encode_header([block.cid]) + uvarint(len(data)) + data)
        reader.finish()
    except dag.CarError:
        pass


@FAST
@given(st.binary(max_size=200))
def test_dag_pb_and_unixfs_decoders_fail_only_with_codec_error(data):
    for decode in (decode_node, UnixFSData.decode):
        with contextlib.suppress(dag.CodecError):
            decode(data)


@FAST
@given(st.binary(max_size=200))
def test_dag_cbor_decoder_fails_only_with_codec_error(data):
    try:
        value = dag.decode_dagcbor(data)
    except dag.CodecError:
        return
    assert dag.encode_dagcbor(value) == data  # strict: whatever decodes is canonical


@FAST
@given(
    data=st.binary(max_size=3000),
    chunk=st.integers(1, 64),
    links=st.integers(2, 6),
    version=st.sampled_from([0, 1]),
    offset=st.integers(0, 3100),
    length=st.one_of(st.none(), st.integers(0, 3100)),
)
def test_imported_bytes_read_back_in_any_range(data, chunk, links, version, offset, length):
    params = ImportParams(chunk_size=chunk, cid_version=version, max_links=links)
    builder = FileBuilder(params)
    store = MemoryBlocks()
    blocks = []
    for i in range(0, len(data), chunk):
        blocks += builder.add_chunk(data[i : i + chunk])
    tail, root = builder.finish()
    for block in blocks + tail:
        store.blocks[bytes(block.cid.digest)] = block.data

    async def read() -> bytes:
        return b"".join([p async for p in dag.read_file(store, root, offset, length)])

    end = None if length is None else offset + length
    assert trio.run(read) == data[offset:end]
    assert trio.run(dag.file_size, store, root) == len(data)
