"""Fuzz targets: every parser fed by the network or by users, as ``name -> run(bytes)``.

The contract of a target: for any input ``run`` returns, or raises one of the target's
``accepts`` types (the module's own documented error, which its caller turns into a 400, a
dropped stream or a one-line CLI error). Any other exception is a crash: RecursionError,
ValueError from ``int()``, IndexError, KeyError, UnicodeDecodeError, MemoryError, an
AssertionError raised here because a round trip did not hold. An input must also finish in
bounded time (the runners in ``tests/test_fuzz.py`` and ``bench/fuzz.py`` time each one).

Each target carries seeds made by the real encoders (a signed gossip message, a CAR file, a
UnixFS root, signed HTTP requests, ...) so that a mutating fuzzer starts from inputs that get
past the first byte, and some carry a hypothesis strategy for structured inputs. Where a
route sits in front of a parser (the inbox, ``/pins``, the gateway's headers) the target
calls the same pure functions the route calls, in the same order, and treats as accepted
exactly the errors the route turns into a 4xx.

Inputs that the issue's finding 5 lists (a 5,000-digit ``Range``, an inbox body nested 1,000
levels deep, ``/pins?meta=`` JSON, recipe YAML nested 5,000 levels) are fixed elsewhere and
deliberately not in the seeds; the targets still reach them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import strategies as st

import dag
from dag import Block, FileBuilder, ImportParams
from dag.car import encode_header, encode_section
from dag.cids import decode_cid_bytes
from dag.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, decode_node, encode_node
from dag.unixfs import _file_node

__all__ = ["TARGETS", "Target", "classify", "drive"]

ROOT = Path(__file__).resolve().parents[2]
FIXED_NOW = 1_800_000_000.0  # every signed seed is made "now" on this clock
FIXED_CREATED = datetime.fromtimestamp(FIXED_NOW, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Target:
    """One parser under fuzz. ``seeds`` and ``strategy`` are built lazily (some sign)."""

    name: str
    run: Callable[[bytes], object]
    accepts: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    owner: str  # the module the target exercises, for reports
    strategy: Callable[[], st.SearchStrategy[bytes]] | None = None
    notes: str = ""


def classify(target: Target, data: bytes) -> str:
    """'ok' or 'rejected'; any other exception propagates (a crash)."""
    try:
        target.run(data)
    except target.accepts:
        return "rejected"
    return "ok"


def drive(awaitable: Any) -> Any:
    """Run a coroutine that never really suspends (its I/O is in memory) without trio.

    The in-memory stand-ins below never await anything that blocks, so the coroutine finishes
    on its first ``send``; running thousands of inputs per second through ``trio.run`` would
    cost more than the parsers do.
    """
    try:
        awaitable.send(None)
    except StopIteration as stop:
        return stop.value
    awaitable.close()
    raise AssertionError("the coroutine suspended: it waited on real I/O")


async def _collect(agen: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in agen])


# --- DAG-CBOR, CIDs ---------------------------------------------------------------------------


def _run_dagcbor(data: bytes) -> None:
    value = dag.decode_dagcbor(data)
    again = dag.encode_dagcbor(value)
    assert again == data, "strict DAG-CBOR decoded bytes it would not encode the same way"
    list(dag.dagcbor.iter_links(value))
    dag.to_dag_json(value)


_SEED_CID = Block.encode(b"fuzz seed").cid


def _seed_records() -> list[Any]:
    return [
        {"type": "asset", "version": 1, "root": _SEED_CID, "name": "a.txt", "size": 3},
        [1, -1, 2**63, -(2**64), 1.5, None, True, False, "é", b"\x00\xff", {"": []}],
        {"a": {"b": {"c": [_SEED_CID, {"d": b"x" * 40}]}}},
        0,
        "",
        b"",
        [],
        {},
    ]


def _dagcbor_seeds() -> list[bytes]:
    return [dag.encode_dagcbor(v) for v in _seed_records()]


_IPLD_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.builds(lambda b: Block.encode(b).cid, st.binary(max_size=8)),
)
IPLD_VALUES = st.recursive(
    _IPLD_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _dagcbor_strategy() -> st.SearchStrategy[bytes]:
    return IPLD_VALUES.map(dag.encode_dagcbor)


def _run_cid_text(data: bytes) -> None:
    cid = dag.parse_cid(data.decode("utf-8", errors="replace"))
    assert dag.parse_cid(dag.cid_to_str(cid)) == cid


def _run_cid_bytes(data: bytes) -> None:
    cid, used = decode_cid_bytes(data)
    assert bytes(cid) == bytes(data[:used]) or cid.version == 0


def _cid_seeds() -> list[bytes]:
    cids = [_SEED_CID, Block.encode(b"x", "dag-pb", version=0).cid, dag.record_block({}).cid]
    return [dag.cid_to_str(c).encode() for c in cids] + [
        c.encode("base58btc").encode() for c in cids[:1]
    ]


def _cid_bytes_seeds() -> list[bytes]:
    cids = [_SEED_CID, Block.encode(b"x", "dag-pb", version=0).cid, dag.record_block({}).cid]
    return [bytes(c) for c in cids] + [bytes(cids[0]) + b"trailing"]


# --- CAR --------------------------------------------------------------------------------------


def _run_car(data: bytes) -> None:
    """The whole input fed at once, then again cut in pieces (inside the first varints and at
    a few places further on): same blocks, same verdict."""
    whole = dag.CarReader()
    outcome: list[Any] = []
    try:
        outcome = [b.cid for b in whole.feed(data)]
        whole.finish()
    except dag.CarError as exc:
        whole_error: str | None = str(exc)
    else:
        whole_error = None
    pieces = dag.CarReader()
    seen: list[Any] = []
    try:
        n = len(data)
        cuts = sorted({0, 1, 2, 7, n // 3, n // 2, 2 * n // 3, n})
        for at, until in itertools.pairwise(cuts):
            seen += [b.cid for b in pieces.feed(data[at:until])]
        pieces.finish()
    except dag.CarError as exc:
        assert whole_error is not None, f"fed in pieces, a valid CAR failed: {exc}"
        raise
    assert whole_error is None, f"fed whole a CAR failed that passed in pieces: {whole_error}"
    assert seen == outcome, "the blocks differ when the CAR is fed in pieces"


def _car_seeds() -> list[bytes]:
    builder = FileBuilder(ImportParams(chunk_size=8, max_links=3))
    blocks = [b for i in range(4) for b in builder.add_chunk(bytes([65 + i]) * 8)]
    rest, root = builder.finish()
    blocks += rest
    record = dag.record_block({"file": root, "n": 1})
    blocks.append(record)
    car = encode_header([record.cid]) + b"".join(encode_section(b.cid, b.data) for b in blocks)
    small = encode_header([_SEED_CID]) + encode_section(_SEED_CID, b"fuzz seed")
    return [car, small, car[:40]]


# --- dag-pb and UnixFS ------------------------------------------------------------------------


def _run_dagpb(data: bytes) -> None:
    node = decode_node(data)
    assert decode_node(encode_node(node)) == node, "dag-pb node changed on a round trip"
    if node.data is not None:
        meta = UnixFSData.decode(node.data)
        again = UnixFSData.decode(meta.encode())
        assert again == meta or (not meta.data and again.data is None), "UnixFS round trip"


class MemoryStore:
    """The one call the UnixFS reader makes (``get``), over a dict; never suspends."""

    def __init__(self, blocks: Iterable[Block] = ()) -> None:
        self.blocks = {bytes(b.cid.digest): b.data for b in blocks}

    async def get(self, cid: Any) -> bytes:
        try:
            return self.blocks[bytes(cid.digest)]
        except KeyError:
            raise dag.BlockNotFound(cid) from None


@functools.cache
def _unixfs_fixture() -> tuple[list[Block], Block]:
    """A 3-level file of 9 chunks of 8 bytes (2 links per node), its leaves dag-pb (CIDv0)
    in one half and raw in the other, so a mutated root can link to real blocks of both."""
    blocks: list[Block] = []
    builder = FileBuilder(ImportParams(chunk_size=8, max_links=2, cid_version=0))
    for i in range(5):
        blocks += builder.add_chunk(bytes([97 + i]) * 8)
    more, root0 = builder.finish()
    blocks += more
    raw = FileBuilder(ImportParams(chunk_size=8, max_links=3))
    for i in range(4):
        blocks += raw.add_chunk(bytes([48 + i]) * 8)
    more, root1 = raw.finish()
    blocks += more
    by_cid = {b.cid: b for b in blocks}
    return blocks, by_cid[root0] if root0 in by_cid else by_cid[root1]


def _run_unixfs(data: bytes) -> None:
    """A mutated root over real blocks: what ``/ipfs/<cid>`` reads when a peer served it."""
    blocks, _root = _unixfs_fixture()
    root = Block.encode(data, "dag-pb")
    store = MemoryStore([*blocks, root])
    _file_node(root.cid, data)
    size = drive(dag.file_size(store, root.cid))  # type: ignore[arg-type]
    whole = drive(_collect(dag.read_file(store, root.cid)))  # type: ignore[arg-type]
    part = drive(_collect(dag.read_file(store, root.cid, 3, 11)))  # type: ignore[arg-type]
    assert part == whole[3:14], "a range read differs from the same bytes of the whole"
    assert size >= 0


def _unixfs_seeds() -> list[bytes]:
    blocks, root = _unixfs_fixture()
    pb = [b.data for b in blocks if b.cid.codec.name == "dag-pb"]
    inline = encode_node(PBNode((), UnixFSData(UnixFSType.FILE, b"hello", 5).encode()))
    return [root.data, *pb, inline]


def _pb_strategy() -> st.SearchStrategy[bytes]:
    cids = st.builds(lambda b: Block.encode(b).cid, st.binary(max_size=4))
    links = st.builds(PBLink, cids, st.integers(0, 2**40), st.text(max_size=6))
    meta = st.builds(
        UnixFSData,
        st.sampled_from(list(UnixFSType)),
        st.one_of(st.none(), st.binary(min_size=1, max_size=16)),
        st.one_of(st.none(), st.integers(0, 2**40)),
        st.lists(st.integers(0, 2**30), max_size=4).map(tuple),
    )
    nodes = st.builds(
        PBNode,
        st.lists(links, max_size=4).map(tuple),
        st.one_of(st.none(), meta.map(UnixFSData.encode), st.binary(max_size=16)),
    )
    return nodes.map(encode_node)


# --- gossip: every topic's validator, and the market's job records ----------------------------


@functools.cache
def _identity() -> Any:
    from provenance import Identity

    return Identity.from_seed(bytes(range(32)))


def _signed(type_name: str, topic: Any, **payload: Any) -> dict[str, Any]:
    from p2p.gossip import envelope
    from provenance import sign_record

    record = envelope(type_name, topic, **payload)
    record["created"] = FIXED_CREATED
    record["nonce"] = bytes(16)
    return sign_record(record, _identity())


def _record_strategy(seeds: Callable[[], list[bytes]]) -> Callable[[], st.SearchStrategy[bytes]]:
    """Seed records with one field replaced, added or removed, re-encoded: typed garbage that
    gets past DAG-CBOR to the schema checks and the handlers (signatures no longer hold)."""

    def build() -> st.SearchStrategy[bytes]:
        @st.composite
        def edited(draw: st.DrawFn) -> bytes:
            record = dict(dag.decode_dagcbor(draw(st.sampled_from(seeds()))))
            key = draw(st.sampled_from(sorted(record)) | st.text(max_size=8))
            if draw(st.booleans()) and key in record:
                del record[key]
            else:
                record[key] = draw(IPLD_VALUES)
            return dag.encode_dagcbor(record)

        return edited()

    return build


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def _edit(draw: st.DrawFn, value: Any, values: st.SearchStrategy[Any]) -> Any:
    """``value`` with one member somewhere inside it replaced, added or removed."""
    if isinstance(value, dict) and value and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: _edit(draw, value[key], values)}
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        at = draw(st.integers(0, len(value) - 1))
        return [*value[:at], _edit(draw, value[at], values), *value[at + 1 :]]
    if isinstance(value, dict):
        key = draw(st.sampled_from(sorted(value)) | st.text(max_size=8)) if value else "k"
        if draw(st.booleans()) and key in value:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: draw(values)}
    return draw(values)


def _json_strategy(seeds: Callable[[], list[bytes]]) -> Callable[[], st.SearchStrategy[bytes]]:
    """Seed JSON documents with one member somewhere replaced, added or removed."""

    def build() -> st.SearchStrategy[bytes]:
        @st.composite
        def edited(draw: st.DrawFn) -> bytes:
            doc = json.loads(draw(st.sampled_from(seeds())))
            return json.dumps(_edit(draw, doc, JSON_VALUES)).encode()

        return edited()

    return build


def _cbor_edit_strategy(seeds: Callable[[], list[bytes]]) -> Callable[[], st.SearchStrategy[bytes]]:
    """Seed DAG-CBOR values with one member somewhere replaced, added or removed."""

    def build() -> st.SearchStrategy[bytes]:
        @st.composite
        def edited(draw: st.DrawFn) -> bytes:
            value = dag.decode_dagcbor(draw(st.sampled_from(seeds())))
            return dag.encode_dagcbor(_edit(draw, value, IPLD_VALUES))

        return edited()

    return build


def _gossip_run(topic_name: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from p2p.gossip import DEFAULT_TOPICS, Accept, DuplicateCache, Reject, validate

        spec = next(t for t in DEFAULT_TOPICS if t.name == topic_name)
        seen = DuplicateCache(max_entries=4)
        verdict = validate(spec, data, now=FIXED_NOW, seen=seen)
        assert isinstance(verdict, Accept | Reject)
        if isinstance(verdict, Accept):
            again = validate(spec, data, now=FIXED_NOW, seen=seen)
            assert isinstance(again, Reject) and again.reason == "replay"

    return run


def _heads_seeds() -> list[bytes]:
    from p2p.gossip import HEADS

    me = _identity().did
    head = dag.record_block({"n": 1}).cid
    return [
        dag.encode_dagcbor(_signed("head", HEADS, repo=me, seq=3, head=head)),
        dag.encode_dagcbor(_signed("head", HEADS, repo=me, seq=0, head=head, blocks=[b"x"])),
    ]


def _claims_seeds() -> list[bytes]:
    from p2p.gossip import CLAIMS

    claim = dag.record_block({"c": 1}).cid
    return [
        dag.encode_dagcbor(_signed("claim-announce", CLAIMS, claim=claim)),
        dag.encode_dagcbor(_signed("claim-announce", CLAIMS, claim=claim, subject=_SEED_CID)),
    ]


@functools.cache
def _job_payloads() -> list[dict[str, Any]]:
    from renderer import load_recipe_yaml, plan_recipe
    from renderer.market import JobCaps, JobInput, job_for_step

    sources = {n: Block.encode(f"source {n}".encode(), "raw").cid for n in "abc"}
    plan = plan_recipe(load_recipe_yaml((ROOT / "examples" / "montage.yaml").read_text()), sources)
    out = []
    for step in list(plan.steps.values())[:3]:
        inputs = []
        for ref in step.inputs:
            if isinstance(ref, dag.CID):
                inputs.append(JobInput(ref, ref, "media", 1000, None))
            else:
                made = Block.encode(f"output of {ref}".encode(), "raw").cid
                inputs.append(JobInput(made, plan.steps[ref].cache_id, "media", 5000, 2000))
        spec = job_for_step(
            step,
            inputs,
            job_id="0123456789abcdef",
            replicas=3,
            deadline=FIXED_NOW + 3600,
            caps=JobCaps(),
        )
        out.append(spec.payload())
    return out


def _jobs_seeds() -> list[bytes]:
    from p2p.gossip import JOBS

    out = [dag.encode_dagcbor(_signed("job", JOBS, **p)) for p in _job_payloads()]
    out.append(
        dag.encode_dagcbor(
            _signed(
                "job-close",
                JOBS,
                job="0123456789abcdef",
                status="failed",
                cache_id=dag.record_block({"step": 1}).cid,
                reason="no quorum",
            )
        )
    )
    return out


def _run_market_job(data: bytes) -> None:
    """A ``job`` record as a volunteer reads it: schema (as gossip checked it), then the spec.
    The signature is left out: anyone can sign whatever they like with their own key."""
    from provenance import validate_record
    from renderer.market import JobSpec, VolunteerPolicy, refuse_job

    record = dag.decode_dagcbor(data)
    validate_record(record)
    if record.get("type") != "job":
        return
    spec = JobSpec.from_record(record)
    refuse_job(VolunteerPolicy(), spec.facts())
    spec.to_step()


def _market_seeds() -> list[bytes]:
    from p2p.gossip import JOBS

    return [dag.encode_dagcbor(_signed("job", JOBS, **p)) for p in _job_payloads()]


@functools.cache
def _volunteer() -> Any:
    from provenance import Identity

    return Identity.from_seed(bytes(range(1, 33)))


def _run_market_book(data: bytes) -> None:
    """A sequence of market messages (a DAG-CBOR list) applied to the requester's
    :class:`JobBook` and the volunteer's :class:`VolunteerBook` the way
    ``daemon/market_requester.py`` and ``market_volunteer.py`` apply them once gossip has
    accepted each one (schema-valid; signatures are anyone's to make). Nothing may raise."""
    from provenance import RecordError, parse_timestamp, validate_record
    from renderer.market import JobBook, JobError, JobSpec, SlotResult, VolunteerBook

    records = dag.decode_dagcbor(data)
    records = records if isinstance(records, list) else [records]
    book = JobBook("0123456789abcdef", replicas=3, lease_s=30)
    volunteer = VolunteerBook(did=_volunteer().did, capacity=2)
    now = FIXED_NOW
    for record in records:
        try:
            validate_record(record)
        except RecordError:
            continue  # gossip rejects it: no handler sees it
        kind, signer = record["type"], record.get("signer", "did:key:nobody")
        now += 1
        if kind == "job":
            with contextlib.suppress(JobError):
                volunteer.see_job(JobSpec.from_record(record), now)
        elif kind == "offer" and record["job"] == book.job_id:
            book.offer(signer, record["capacity"], now)
            for slot, offer in zip(book.grantable(now), book.candidates(), strict=False):
                book.grant(slot, offer.volunteer, now)  # LeaseError here would be a bug
        elif kind == "heartbeat":
            book.renew(signer, record["slot"], now, record["frames"])
        elif kind == "release":
            book.release(signer, record["slot"])
        elif kind == "result":
            receipt = record["receipt"]
            result = SlotResult(signer, record["slot"], receipt, receipt, "key",
                                record.get("duration_ms"), 1)  # fmt: skip
            book.result(signer, record["slot"], result)
        elif kind == "lease":
            expires = parse_timestamp(record["expires"]).timestamp()
            volunteer.on_lease(record["job"], record["slot"], record["volunteer"], expires,
                               signer, now)  # fmt: skip
        elif kind == "job-close":
            volunteer.on_close(record["job"], signer)
        book.verdict()
        book.needs_another_replica()
        volunteer.offerable(now)
    book.expire_due(now + 3600)
    volunteer.expired(now + 3600)


def _market_book_seeds() -> list[bytes]:
    from p2p.gossip import JOBS
    from provenance import sign_record

    me, them = _identity(), _volunteer()
    job = "0123456789abcdef"
    later = datetime.fromtimestamp(FIXED_NOW + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    receipt = dag.record_block({"receipt": 1}).cid

    def by(identity: Any, type_name: str, **payload: Any) -> dict[str, Any]:
        record = _signed(type_name, JOBS, **payload)
        del record["sig"], record["signer"]
        return sign_record(record, identity)

    script = [
        _signed("job", JOBS, **_job_payloads()[0]),
        by(them, "offer", job=job, requester=me.did, capacity=2),
        by(me, "lease", job=job, slot=0, volunteer=them.did, expires=later),
        by(them, "heartbeat", job=job, slot=0, requester=me.did, frames=10),
        by(them, "result", job=job, slot=0, requester=me.did, receipt=receipt, duration_ms=5),
        by(them, "release", job=job, slot=0, requester=me.did, reason="busy"),
        by(me, "job-close", job=job, status="done", cache_id=receipt, output=receipt),
    ]
    return [dag.encode_dagcbor(script), dag.encode_dagcbor(script[1:4] * 3)]


# --- bitswap ----------------------------------------------------------------------------------


def _run_bitswap(data: bytes) -> None:
    from p2p.bitswap import messages as m

    msg = m.decode_message(data)
    for block in msg.blocks:
        with contextlib.suppress(m.MessageError):
            block.prefix.block_for(block.data)
    again = m.decode_message(m.encode_message(msg))
    assert again.presences == msg.presences and again.blocks == msg.blocks, "bitswap round trip"
    assert [e.cid for e in again.entries] == [e.cid for e in msg.entries], "bitswap round trip"


def _bitswap_seeds() -> list[bytes]:
    from p2p.bitswap import messages as m

    other = Block.encode(b"y", "dag-pb", version=0).cid
    msg = m.Message(
        entries=[
            m.WantEntry(_SEED_CID, m.WantType.HAVE, 5, False, True),
            m.WantEntry(other, cancel=True),
        ],
        full=True,
        presences=[m.Presence(_SEED_CID, m.PresenceType.DONT_HAVE)],
        pending_bytes=7,
    )
    block = Block.encode(b"payload block")
    return [
        m.encode_message(msg),
        m.encode_message(m.Message(), blocks=[block]),
        m.encode_message(
            m.Message(), m.PROTOCOL_V100, blocks=[Block.encode(b"z", "dag-pb", version=0)]
        ),
    ]


class _ChunkStream:
    """A libp2p stream stand-in handing out the given chunks, then EOF."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def read(self, n: int | None = None) -> bytes:
        """At most ``n`` bytes, never more than one chunk (as a muxed stream reads)."""
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if n is not None and len(chunk) > n:
            chunk, rest = chunk[:n], chunk[n:]
            self.chunks.insert(0, rest)
        return chunk


def _run_bitswap_frames(data: bytes) -> None:
    """Frames read off a stream cut at arbitrary points (the first byte sets the cut size)."""
    from p2p.bitswap import messages as m
    from p2p.bitswap.framing import FrameReader

    step = 1 + (data[0] % 13) if data else 1
    body = data[1:]
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    reader = FrameReader(_ChunkStream(chunks), max_size=4096)  # type: ignore[arg-type]
    for _ in range(len(body) + 1):
        frame = drive(reader.next())
        if frame is None:
            return
        m.decode_message(frame)
    raise AssertionError("more frames than bytes")


def _frame_seeds() -> list[bytes]:
    from p2p.bitswap.framing import frame

    return [bytes([i]) + b"".join(frame(s) for s in _bitswap_seeds()[:2]) for i in (0, 3)]


def _run_repo_heads(data: bytes) -> None:
    """The heads exchange of repo sync: frames off a stream cut where the first byte says,
    each read as a request and as a reply, and verified as a commit block would be."""
    from p2p.repo.chain import RepoError, verify_commit
    from p2p.repo.heads_protocol import decode_reply, decode_request, read_frame

    step = 1 + (data[0] % 13) if data else 1
    body = data[1:]
    stream = _ChunkStream([body[i : i + step] for i in range(0, len(body), step)])
    for _ in range(len(body) + 1):
        if not stream.chunks:
            return
        value = drive(read_frame(stream))  # type: ignore[arg-type]
        for read in (decode_request, decode_reply):
            with contextlib.suppress(RepoError):
                read(value)
        with contextlib.suppress(RepoError):
            verify_commit(value, _identity().did)
    raise AssertionError("more frames than bytes")


def _repo_heads_seeds() -> list[bytes]:
    from p2p.bitswap.framing import frame
    from p2p.repo.chain import append

    me = _identity()
    commit = append(me, None, _SEED_CID)
    request = {"heads": [{"repo": me.did, "seq": 0}]}
    reply = {"heads": [dag.decode_dagcbor(s) for s in _heads_seeds()]}
    frames = b"".join(frame(dag.encode_dagcbor(v)) for v in (request, reply, commit))
    return [b"\x00" + frames, b"\x04" + frames]


# --- HTTP signatures (draft-cavage and RFC 9421) ----------------------------------------------

INBOX_URL = "http://127.0.0.1:8000/users/alice/inbox"


@functools.cache
def _rsa_key() -> Any:
    from activitypub_bridge import generate_actor_key

    return generate_actor_key()


def _headers_of(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """``name: value`` lines, a blank line, the body (as an HTTP/1.1 request's head would be,
    decoded latin-1 as the server does)."""
    head, _, body = data.partition(b"\n\n")
    headers = []
    for line in head.decode("latin-1").split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return headers, body


def _encode_request(headers: dict[str, str], body: bytes) -> bytes:
    return "\n".join(f"{k}: {v}" for k, v in headers.items()).encode("latin-1") + b"\n\n" + body


def _run_http_signature(data: bytes) -> None:
    from activitypub_bridge.http_signatures import signature_key_id, verify_request

    headers, body = _headers_of(data)
    public = _rsa_key().public_key()
    signature_key_id(headers)
    verify_request("POST", INBOX_URL, headers, body, lambda key_id: public, now=FIXED_NOW)


def _http_signature_seeds() -> list[bytes]:
    from activitypub_bridge.http_signatures import sign_cavage, sign_rfc9421

    body = b'{"type":"Follow"}'
    key_id = "http://127.0.0.1:9000/users/bob#main-key"
    out = []
    for sign in (sign_cavage, sign_rfc9421):
        headers = sign("POST", INBOX_URL, {}, body, key_id, _rsa_key(), now=FIXED_NOW)
        out.append(_encode_request(headers, body))
    return out


# --- ActivityPub inbox ------------------------------------------------------------------------


@functools.cache
def _inbox_world() -> tuple[Any, dict[str, Any]]:
    from activitypub_bridge import public_key_pem
    from activitypub_bridge.documents import BridgeSite, Creator

    site = BridgeSite.parse("http://127.0.0.1:8000", allow_http_loopback=True)
    alice = Creator("alice", _identity().did, public_key_pem(_rsa_key()))
    return site, {"alice": alice}


BOB = "http://127.0.0.1:9000/users/bob"


def _run_inbox(data: bytes) -> None:
    """What ``ActivityPubService.inbox`` does with a body once the signature held: the bounded
    JSON parser (its JsonRefused is the route's 400), then :func:`handle_inbox`."""
    from activitypub_bridge import parse_json
    from activitypub_bridge.inbox import Decision, handle_inbox
    from daemon.config import Config

    activity = parse_json(data, max_bytes=Config().activitypub.max_inbox_bytes)
    site, creators = _inbox_world()
    decisions = handle_inbox(site, creators, activity, BOB, blocked=lambda host: False)
    kinds = Decision.__args__  # type: ignore[attr-defined]
    assert decisions and all(isinstance(d, kinds) for d in decisions)


def _inbox_seeds() -> list[bytes]:
    work = f"http://127.0.0.1:8000/works/{dag.cid_to_str(_SEED_CID)}"
    activities = [
        {
            "id": f"{BOB}#f1",
            "type": "Follow",
            "actor": BOB,
            "object": "http://127.0.0.1:8000/users/alice",
        },
        {
            "id": f"{BOB}#u1",
            "type": "Undo",
            "actor": BOB,
            "object": {
                "id": f"{BOB}#f1",
                "type": "Follow",
                "actor": BOB,
                "object": "http://127.0.0.1:8000/users/alice",
            },
        },
        {"id": f"{BOB}#l1", "type": "Like", "actor": {"id": BOB}, "object": work},
        {"id": f"{BOB}#a1", "type": "Announce", "actor": BOB, "object": work},
        {"id": f"{BOB}#d1", "type": "Delete", "actor": BOB, "object": BOB},
        {
            "type": "Create",
            "actor": BOB,
            "object": {"type": "Note", "content": "hi", "tag": [1, 2.5, None]},
        },
    ]
    return [json.dumps(a).encode() for a in activities]


# --- gateway headers --------------------------------------------------------------------------


def _run_gateway_headers(data: bytes) -> None:
    """The gateway's request headers, one per line: ``Range``, ``If-None-Match``, ``If-Range``,
    ``Accept``, ``?format=``, ``X-Forwarded-For``, ``?filename=``; the whole input is also
    sniffed as a file's first bytes. Only GatewayError (a 400/406) may come out."""
    from webui.client_limits import client_address
    from webui.gateway import content_disposition, requested_format, sniff_content_type
    from webui.gateway_ranges import RangeKind, if_none_match_hits, if_range_allows, parse_range

    lines = data.decode("latin-1").split("\n")
    range_h, inm, if_range, accept, fmt, forwarded, filename = [*lines, *[""] * 7][:7]
    etag = '"bafkreigh2akiscaildc"'
    for size in (0, 1, 100, 2**40):
        for cap in (None, 7):
            got = parse_range(range_h or None, size, max_bytes=cap)
            r = got.range
            if got.kind is RangeKind.PARTIAL:
                assert 0 <= r.start < r.stop <= size, f"range {r} outside {size}"
                assert cap is None or r.length <= cap
                assert r.content_range(size).startswith("bytes ")
            assert got.status in (200, 206, 416)
    assert isinstance(if_none_match_hits(inm or None, etag), bool)
    assert isinstance(if_range_allows(if_range or None, etag), bool)
    assert isinstance(if_range_allows(if_range or None, "W/" + etag), bool)
    assert "/" in sniff_content_type(data[:512], whole=len(data) <= 512)
    content_disposition("inline", filename or None).encode("latin-1")  # a header must encode
    assert client_address("127.0.0.1", forwarded, trust_forwarded_for=True)
    requested_format(None, accept or None)
    requested_format(fmt or None, accept or None)


def _gateway_seeds() -> list[bytes]:
    return [
        b'bytes=0-99\n"bafkreigh2akiscaildc"\n"bafkreigh2akiscaildc"\n'
        b"application/vnd.ipld.car;version=1;q=0.5, application/vnd.ipld.raw\n\n"
        b"203.0.113.9, 127.0.0.1\nclip \xe9t\xe9.mp4",
        b"bytes=1-2\n\n\ntext/html\ndag-json\n::1\nx.txt",
        b'bytes=-5\nW/"x", "y"\n"z"',
        b"bytes=10-\n*\nSat, 01 Jan 2000 00:00:00 GMT",
        b"bytes=1-2,5-6\n\n",
        b"items=1-2",
    ]


# --- Pinning Service API ----------------------------------------------------------------------


def _run_pin_body(data: bytes) -> None:
    """``POST /pins`` and ``POST /pins/{id}`` as ``api_pinning._pin_body`` reads them (its
    JsonRefused becomes a 400), then :func:`parse_pin_body`."""
    from activitypub_bridge import parse_json
    from daemon.core.pinning_api.requests import parse_pin_body
    from daemon.http.pinning import MAX_BODY_BYTES, MAX_BODY_DEPTH

    parse_pin_body(parse_json(data, max_bytes=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH))


def _pin_body_seeds() -> list[bytes]:
    cid = dag.cid_to_str(_SEED_CID)
    return [
        json.dumps({"cid": cid}).encode(),
        json.dumps(
            {
                "cid": cid,
                "name": "clip",
                "origins": [
                    "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVhBpSkRd9WqxDSPkC4uR8jTsjH7N3ZWw8nqAx7CxE"
                ],
                "meta": {"app": "artdag"},
            }
        ).encode(),
    ]


def _run_pin_query(data: bytes) -> None:
    """``GET /pins?...`` as ``api_pinning._query_args`` flattens it, then ``parse_list_query``."""
    from daemon.core.pinning_api.requests import parse_list_query

    list_params = ("cid", "status")
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(data.decode("latin-1"), keep_blank_values=True):
        values.setdefault(key, []).append(value)
    args = {k: ",".join(v) if k in list_params else v[0] for k, v in values.items()}
    parse_list_query(args)


def _pin_query_seeds() -> list[bytes]:
    cid = dag.cid_to_str(_SEED_CID)
    return [
        f"cid={cid}&status=pinned,queued&limit=10".encode(),
        b"name=clip&match=iexact&before=2026-01-01T00:00:00Z&after=2025-01-01T00:00:00.5%2B01:00",
        b"limit=1000",
        b"status=failed&status=pinning",
    ]


# --- recipe YAML, config TOML -----------------------------------------------------------------


def _run_recipe(data: bytes) -> None:
    from renderer.recipes import load_recipe_yaml

    load_recipe_yaml(data)


def _recipe_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ROOT / "examples").glob("*.yaml"))]


@functools.cache
def _config_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="artdag-fuzz-config-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def _run_config(data: bytes) -> None:
    """``config.toml`` as ``artdag`` reads it (a scratch home, no environment)."""
    from daemon.config import load_config

    home = _config_home()
    (home / "config.toml").write_bytes(data)
    load_config(home, environ={})


def _config_seeds() -> list[bytes]:
    peer = "12D3KooWGRUVhBpSkRd9WqxDSPkC4uR8jTsjH7N3ZWw8nqAx7CxE"
    return [
        b'[node]\nuser = "alice"\n\n[http]\nport = 8765\nmax_upload_bytes = 1000000\n',
        f'[p2p]\nbootstrap = ["/ip4/127.0.0.1/tcp/4001/p2p/{peer}"]\nmdns = false\n'.encode(),
        b'[store]\nsync = "never"\n[import]\nchunk_size = 262144\ncid_version = 0\n',
        b"",
    ]


def _repo_error() -> type[BaseException]:
    from p2p.repo.chain import RepoError

    return RepoError


def _error_types() -> dict[str, tuple[type[BaseException], ...]]:
    from activitypub_bridge.http_signatures import SignatureRejected
    from daemon.config import ConfigError
    from daemon.core.pinning_api.requests import PinRequestError
    from p2p.bitswap.errors import MessageError
    from provenance import RecordError
    from renderer.market import JobError
    from renderer.recipes import RecipeError

    return {
        "sig": (SignatureRejected,),
        "config": (ConfigError,),
        "pin": (PinRequestError,),
        "bitswap": (MessageError,),
        "market": (dag.CodecError, RecordError, JobError),
        "recipe": (RecipeError,),
    }


def _targets() -> dict[str, Target]:
    from activitypub_bridge import JsonRefused
    from webui.gateway import GatewayError

    err = _error_types()
    gossip_note = "validate() returns Accept or Reject and never raises"
    items = [
        Target(
            "dagcbor",
            _run_dagcbor,
            (dag.CodecError,),
            _dagcbor_seeds,
            "dag/dagcbor.py",
            _dagcbor_strategy,
            "decode(data) re-encodes to data (strict)",
        ),
        Target("cid-text", _run_cid_text, (dag.CidError,), _cid_seeds, "dag/cids.py"),
        Target("cid-bytes", _run_cid_bytes, (dag.CidError,), _cid_bytes_seeds, "dag/cids.py"),
        Target(
            "car",
            _run_car,
            (dag.CarError,),
            _car_seeds,
            "dag/car.py",
            notes="whole and in 7-byte pieces agree",
        ),
        Target("dagpb", _run_dagpb, (dag.CodecError,), _unixfs_seeds, "dag/dagpb.py", _pb_strategy),
        Target(
            "unixfs-read",
            _run_unixfs,
            (dag.CodecError, dag.BlockNotFound),
            _unixfs_seeds,
            "dag/unixfs.py",
            _pb_strategy,
            "file_size and read_file over a mutated root",
        ),
        Target(
            "gossip-heads",
            _gossip_run("/artdag/1/heads"),
            (),
            _heads_seeds,
            "p2p/gossip/validation.py",
            _record_strategy(_heads_seeds),
            gossip_note,
        ),
        Target(
            "gossip-claims",
            _gossip_run("/artdag/1/claims"),
            (),
            _claims_seeds,
            "p2p/gossip/validation.py",
            _record_strategy(_claims_seeds),
            gossip_note,
        ),
        Target(
            "gossip-jobs",
            _gossip_run("/artdag/1/jobs"),
            (),
            _jobs_seeds,
            "p2p/gossip/validation.py",
            _record_strategy(_jobs_seeds),
            gossip_note,
        ),
        Target(
            "market-job",
            _run_market_job,
            err["market"],
            _market_seeds,
            "renderer/market/jobspec.py",
            _record_strategy(_market_seeds),
        ),
        Target(
            "market-book",
            _run_market_book,
            (dag.CodecError,),
            _market_book_seeds,
            "renderer/market/leases.py, volunteer.py",
            _cbor_edit_strategy(_market_book_seeds),
        ),
        Target(
            "bitswap-message",
            _run_bitswap,
            err["bitswap"],
            _bitswap_seeds,
            "p2p/bitswap/messages.py",
        ),
        Target(
            "bitswap-frames",
            _run_bitswap_frames,
            err["bitswap"],
            _frame_seeds,
            "p2p/bitswap/framing.py",
        ),
        Target(
            "repo-heads",
            _run_repo_heads,
            (_repo_error(),),
            _repo_heads_seeds,
            "p2p/repo/heads_protocol.py, chain.py",
        ),
        Target(
            "http-signature",
            _run_http_signature,
            err["sig"],
            _http_signature_seeds,
            "activitypub_bridge/http_signatures.py",
            notes="both forms; seeds signed",
        ),
        Target(
            "inbox",
            _run_inbox,
            (JsonRefused,),
            _inbox_seeds,
            "activitypub_bridge/inbox.py",
            _json_strategy(_inbox_seeds),
        ),
        Target(
            "gateway-headers",
            _run_gateway_headers,
            (GatewayError,),
            _gateway_seeds,
            "webui/gateway_ranges.py, webui/gateway.py",
        ),
        Target(
            "pin-body",
            _run_pin_body,
            (*err["pin"], JsonRefused),
            _pin_body_seeds,
            "daemon/pin_requests.py",
            _json_strategy(_pin_body_seeds),
        ),
        Target("pin-query", _run_pin_query, err["pin"], _pin_query_seeds, "daemon/pin_requests.py"),
        Target("recipe-yaml", _run_recipe, err["recipe"], _recipe_seeds, "renderer/recipes.py"),
        Target("config-toml", _run_config, err["config"], _config_seeds, "daemon/config.py"),
    ]
    return {t.name: t for t in items}


TARGETS: dict[str, Target] = _targets()
