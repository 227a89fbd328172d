"""The bounded fuzz run that is part of the suite (finding 8 of issue 16), and the regression
tests of what fuzzing found.

Every target of ``tests/harness/fuzz_targets.py`` gets its seeds (valid encodings from the real
encoders) and a fixed number of hypothesis examples: random bytes, seeds with bytes flipped,
inserted, deleted or cut, and, for the binary codecs, structured values from the real encoders.
``derandomize=True`` makes the run the same in CI every time; ``bench/fuzz.py`` runs the same
targets for as long as one likes, with atheris. A crash is any exception but the target's
documented ones; a hang is an input slower than ``HANG_S``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dag
from dag import Block
from dag.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, decode_node, encode_node
from p2p.bitswap import messages as bm
from tests.harness.fuzz_targets import (
    IPLD_VALUES,
    TARGETS,
    MemoryStore,
    Target,
    _collect,
    classify,
    drive,
)
from tests.harness.wire import uvarint

HANG_S = 10.0  # far above the slowest input seen on a loaded machine (~1 s), far below a hang
EXAMPLES = 120  # per target: the whole file stays well under a minute on a busy 2-core box
BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def run_bounded(target: Target, data: bytes) -> str:
    start = time.perf_counter()
    outcome = classify(target, data)  # anything but target.accepts propagates: a crash
    elapsed = time.perf_counter() - start
    assert elapsed < HANG_S, f"{target.name}: {len(data)} bytes took {elapsed:.1f} s"
    return outcome


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few edits: what gets a fuzzer past a format's first byte."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "byte"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "cut":
            del data[at:]
        elif op == "byte" and data:
            data[min(at, len(data) - 1)] = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, 0x0A]))
    return bytes(data)


def inputs_for(target: Target) -> st.SearchStrategy[bytes]:
    parts = [st.binary(max_size=256), mutated(target.seeds())]
    if target.strategy is not None:
        parts.append(target.strategy())
    return st.one_of(*parts)


@pytest.mark.parametrize("name", list(TARGETS))
def test_seeds_parse(name: str) -> None:
    """Every seed is a valid input (so the fuzzers start from real encodings)."""
    target = TARGETS[name]
    seeds = target.seeds()
    assert seeds
    outcomes = [run_bounded(target, seed) for seed in seeds]
    assert "ok" in outcomes, f"{name}: no seed parses: {outcomes}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_target(name: str) -> None:
    target = TARGETS[name]

    @BOUNDED
    @given(inputs_for(target))
    def check(data: bytes) -> None:
        run_bounded(target, data)

    check()


# --- round trips of the binary codecs ---------------------------------------------------------


@BOUNDED
@given(IPLD_VALUES)
def test_dagcbor_round_trip(value: Any) -> None:
    data = dag.encode_dagcbor(value)
    assert dag.decode_dagcbor(data) == value
    assert dag.encode_dagcbor(dag.decode_dagcbor(data)) == data


CIDS = st.builds(lambda b: Block.encode(b).cid, st.binary(max_size=4))


@BOUNDED
@given(
    st.lists(st.builds(PBLink, CIDS, st.integers(0, 2**62), st.text(max_size=6)), max_size=4),
    st.one_of(st.none(), st.binary(max_size=16)),
)
def test_dagpb_round_trip(links: list[PBLink], data: bytes | None) -> None:
    node = PBNode(tuple(links), data)
    assert decode_node(encode_node(node)) == node


INT32 = st.integers(-(2**31), 2**31 - 1)


@BOUNDED
@given(
    st.lists(
        st.builds(
            bm.WantEntry,
            CIDS,
            st.sampled_from(list(bm.WantType)),
            INT32.filter(bool),  # 0 is proto3's "absent", which decodes as the default 1
            st.booleans(),
            st.booleans(),
        ),
        max_size=3,
    ),
    st.booleans(),
    st.lists(st.builds(bm.Presence, CIDS, st.sampled_from(list(bm.PresenceType))), max_size=3),
    INT32,
)
def test_bitswap_round_trip(
    entries: list[Any], full: bool, presences: list[Any], pending: int
) -> None:
    msg = bm.Message(entries, full, [], presences, pending)
    assert bm.decode_message(bm.encode_message(msg)) == msg


def test_bitswap_negative_pending_bytes_encode_as_int32() -> None:
    """Found by fuzzing: pendingBytes is an int32 and decodes negative, but encoding one
    raised ValueError from the varint encoder."""
    msg = bm.Message(pending_bytes=-7)
    data = bm.encode_message(msg)
    assert bm.decode_message(data).pending_bytes == -7
    assert data == b"\x28" + b"\xf9" + b"\xff" * 8 + b"\x01"  # ten bytes, as Go writes it


# --- CIDs: one CID, one encoding --------------------------------------------------------------


def test_a_binary_cid_with_non_minimal_varints_is_refused() -> None:
    """Found by fuzzing: ``01 e3 00 00 00`` read as a CIDv1 with codec 0x63 (written in two
    bytes) whose bytes then differed from the input; the spec and go-cid demand minimal varints."""
    good = bytes(Block.encode(b"x").cid)
    assert dag.cids.decode_cid_bytes(good) == (Block.encode(b"x").cid, len(good))
    stretched = [
        b"\x81\x00" + good[1:],  # version 1 in two bytes
        good[:1] + b"\xd5\x00" + good[2:],  # codec raw (0x55) in two bytes
        good[:2] + b"\x92\x00" + good[3:],  # hash sha2-256 (0x12) in two bytes
        good[:3] + b"\xa0\x00" + good[4:],  # digest length 32 in two bytes
        bytes.fromhex("01e3000000a0"),
    ]
    for raw in stretched:
        with pytest.raises(dag.CidError, match="minimally"):
            dag.cids.decode_cid_bytes(raw)
    header = dag.car.encode_header([Block.encode(b"x").cid])
    section = stretched[0] + b"x"
    with pytest.raises(dag.CarError, match="valid CID"):
        dag.CarReader().feed(header + uvarint(len(section)) + section)


# --- UnixFS: what a peer can serve ------------------------------------------------------------


def file_node(links: list[Block], sizes: list[int], filesize: int | None = -1) -> Block:
    total = sum(sizes) if filesize == -1 else filesize
    meta = UnixFSData(UnixFSType.FILE, None, total, tuple(sizes)).encode()
    node = PBNode(tuple(PBLink(b.cid, len(b.data)) for b in links), meta)
    return Block.encode(encode_node(node), "dag-pb")


def read_all(blocks: list[Block], root: Block, offset: int = 0, length: int | None = None) -> bytes:
    store = MemoryStore(blocks)
    return drive(_collect(dag.read_file(store, root.cid, offset, length)))  # type: ignore[arg-type]


def deep_chain(depth: int) -> tuple[list[Block], Block]:
    leaf = Block.encode(b"deep", "raw")
    blocks, top = [leaf], leaf
    for _ in range(depth):
        top = file_node([top], [4])
        blocks.append(top)
    return blocks, top


def test_a_unixfs_dag_thousands_of_levels_deep_reads() -> None:
    """A peer can serve a chain of 3,000 one-link nodes (~150 KB); the recursive reader hit
    Python's recursion limit (RecursionError) instead of yielding the 4 bytes."""
    blocks, root = deep_chain(3000)
    assert read_all(blocks, root) == b"deep"
    assert read_all(blocks, root, 1, 2) == b"ee"
    assert drive(dag.file_size(MemoryStore(blocks), root.cid)) == 4  # type: ignore[arg-type]


def test_links_without_blocksizes_are_a_codec_error() -> None:
    """Found by fuzzing: links and no blocksizes passed the check and zip(strict=True) raised
    ValueError in the middle of the read."""
    leaf = Block.encode(b"abc", "raw")
    meta = UnixFSData(UnixFSType.FILE, None, None, ()).encode()
    root = Block.encode(encode_node(PBNode((PBLink(leaf.cid, 3),), meta)), "dag-pb")
    with pytest.raises(dag.CodecError, match="blocksizes do not match"):
        read_all([leaf, root], root)


def test_children_must_hold_what_blocksizes_promise() -> None:
    """Found by fuzzing: blocksizes (8, 0, 8) over three 8-byte leaves read as 24 bytes whole
    but as other bytes by range, and file_size (the gateway's Content-Length) said yet
    something else; a child whose size differs from its blocksize is now a CodecError."""
    leaves = [Block.encode(bytes([65 + i]) * 8, "raw") for i in range(3)]
    honest = file_node(leaves, [8, 8, 8])
    assert read_all([*leaves, honest], honest) == b"A" * 8 + b"B" * 8 + b"C" * 8
    assert read_all([*leaves, honest], honest, 3, 11) == b"A" * 5 + b"B" * 6
    for sizes in ([8, 0, 8], [8, 9, 7], [8, 8, 4]):
        lying = file_node(leaves, sizes)
        with pytest.raises(dag.CodecError, match="its parent says"):
            read_all([*leaves, lying], lying)
    middle = file_node(leaves[:1], [8])  # a dag-pb child whose own size is 8...
    outer = file_node([middle, leaves[1]], [5, 8])  # ...promised as 5
    with pytest.raises(dag.CodecError, match="its parent says"):
        read_all([*leaves, middle, outer], outer)


def test_filesize_must_equal_data_plus_blocksizes() -> None:
    leaves = [Block.encode(b"x" * 8, "raw")] * 2
    lying = file_node(leaves, [8, 8], filesize=24)
    with pytest.raises(dag.CodecError, match="filesize 24"):
        drive(dag.file_size(MemoryStore([*leaves, lying]), lying.cid))  # type: ignore[arg-type]
    honest = file_node(leaves, [8, 8])
    assert drive(dag.file_size(MemoryStore([*leaves, honest]), honest.cid)) == 16  # type: ignore[arg-type]


# --- route level: the gateway through the real app --------------------------------------------


@pytest.mark.slow
async def test_gateway_serves_a_deep_dag_and_odd_headers(tmp_path) -> None:
    from daemon.config import load_config
    from daemon.core.node import open_node
    from tests.harness.gateway import running_gateway

    blocks, root = deep_chain(1500)  # past the recursion limit; 3,000 is slow through a store
    async with open_node(load_config(tmp_path / "home", environ={})) as node:
        await node.store.put_many(blocks)
        await node.store.flush()
        async with running_gateway(node) as client:
            got = await client.get(f"/ipfs/{dag.cid_to_str(root.cid)}")
            assert (got.status_code, got.content) == (200, b"deep")
            odd = [
                {"Range": "bytes=--1"},
                {"Range": "bytes=3-1"},
                {"Range": "bytes= 1 - 2 ,"},
                {"Range": "bytes=0-0,-1"},
                {"Range": "bytes=\xe9-".encode("latin-1")},
                {"If-None-Match": 'W/"', "Range": "bytes=1-"},
                {"If-Range": '"a", "b"', "Range": "bytes=1-"},
            ]
            for headers in odd:
                reply = await client.get(f"/ipfs/{dag.cid_to_str(root.cid)}", headers=headers)
                assert reply.status_code in (200, 206, 304, 416), (headers, reply.status_code)
            bad = await client.get("/ipfs/bahzaaaaa")
            assert bad.status_code == 400


def test_inbox_json_the_route_refuses_is_a_json_error() -> None:
    """The inbox target accepts exactly the errors the route answers 400 for."""
    target = TARGETS["inbox"]
    for body in (b"\xff", b"{", b'{"a": [}'):
        assert run_bounded(target, body) == "rejected"
    assert run_bounded(target, json.dumps({"type": "Like"}).encode()) == "ok"


@pytest.mark.parametrize("form", [0, 1], ids=["draft-cavage", "rfc9421"])
def test_a_date_with_a_huge_day_is_a_rejected_signature(form: int) -> None:
    """Found by fuzzing: ``Date: Fri, 999999999999915 Jan 2027 08:00:00 GMT`` made
    email.utils raise OverflowError, which escaped verification (a 500 on the inbox) for an
    unauthenticated request; it is now an unparseable Date, like any other."""
    from activitypub_bridge.http_signatures import RejectReason, SignatureRejected

    seed = TARGETS["http-signature"].seeds()[form]
    head, _, body = seed.partition(b"\n\n")
    huge = b"Date: Fri, 999999999999915 Jan 2027 08:00:00 GMT"
    lines = [huge if line.lower().startswith(b"date:") else line for line in head.split(b"\n")]
    with pytest.raises(SignatureRejected) as caught:
        TARGETS["http-signature"].run(b"\n".join(lines) + b"\n\n" + body)
    assert caught.value.reason is RejectReason.STALE_DATE


async def test_pinning_routes_answer_hostile_inputs_with_400(tmp_path) -> None:
    """A few inputs of the pin-body and pin-query targets through the real ``/pins`` app: the
    pure functions' errors must reach the client as 400s, never 500s."""
    import httpx
    import trio
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve
    from quart_trio import QuartTrio

    from daemon.config import load_config
    from daemon.core.pinning_api.tokens import add_token
    from daemon.http import context
    from daemon.http.pinning import pinning
    from daemon.services import open_services

    async with open_services(load_config(tmp_path / "home", environ={})) as services:
        token = add_token(services.config.pinning_tokens_path, "fuzz")
        app = QuartTrio("pins-fuzz")
        context.install(app, services)
        app.register_blueprint(pinning)
        hconfig = HypercornConfig()
        hconfig.bind = ["127.0.0.1:0"]
        hconfig.accesslog = None
        hconfig.graceful_timeout = 1
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(serve, app, hconfig)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=urls[0], headers=headers, timeout=30) as client:
                bodies = [
                    b"\xff",
                    b"[" * 5000,
                    b'{"cid": 1' + b"0" * 5000 + b"}",
                    b"{}",
                    b'{"cid": "bafy", "origins": [[[]]]}',
                    b'{"cid": NaN}',
                    b"1e999",
                ]
                for body in bodies:
                    reply = await client.post("/pins", content=body)
                    assert reply.status_code == 400, (body[:40], reply.status_code)
                queries = [
                    "limit=" + "9" * 5000,
                    "meta=" + "[" * 5000,
                    "before=99999-01-01",
                    "cid=,",
                    "status=pinned,nope",
                    "match=regex",
                    "after=2026-13-01T00:00:00Z",
                ]
                for query in queries:
                    reply = await client.get(f"/pins?{query}")
                    assert reply.status_code == 400, (query[:40], reply.status_code)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", [[], {"a": 1}, b"head", 1, None])
def test_a_gossip_message_whose_type_is_not_text_is_bad_schema(kind: Any) -> None:
    """Found by fuzzing: ``{"type": [], ...}`` made the validator raise TypeError (a list is
    unhashable, and the type was looked up in a frozenset) instead of rejecting it."""
    from p2p.gossip import HEADS, DuplicateCache, Reject, validate

    record = dict(dag.decode_dagcbor(TARGETS["gossip-heads"].seeds()[0]))
    record["type"] = kind
    verdict = validate(HEADS, dag.encode_dagcbor(record), now=1.8e9, seen=DuplicateCache())
    assert isinstance(verdict, Reject) and verdict.reason == "bad-schema"


def test_a_bitswap_prefix_naming_a_non_hash_codec_is_a_message_error() -> None:
    """Found by fuzzing (100k run): a payload prefix whose hash code is 0x55 (``raw``, a
    multicodec but no hash) made multiformats raise MultihashValueError out of block_for."""
    prefix = bm.BlockPrefix(1, 0x55, 0x55, 32)
    with pytest.raises(bm.MessageError, match="unknown codec or hash"):
        prefix.block_for(b"payload")


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\x1f", "\u0660"])
def test_separator_characters_in_numbers_are_refused_not_500(separator: str) -> None:
    """Found by ``bench/fuzz.py`` at a million inputs: ``\\s`` and ``str.strip`` take the
    information separators \\x1c-\\x1f that ``int()``/``float()`` refuse, so ``?limit=1001\\x1c``
    and an ``Accept`` q value of ``\\x1d1`` escaped as ValueError (a 500 on ``GET /pins``)."""
    from daemon.core.pinning_api.requests import PinRequestError, parse_list_query
    from webui.gateway import requested_format

    with pytest.raises(PinRequestError):
        parse_list_query({"limit": f"10{separator}"})
    assert parse_list_query({"limit": " 10\t"}).limit == 10
    # an unreadable weight means "not wanted": the listed type is skipped, nothing raises
    requested_format(None, f"application/vnd.ipld.raw;q={separator}1")
