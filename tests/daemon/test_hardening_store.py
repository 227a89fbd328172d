"""Issue 16, the store and import findings: a failed CAR import must not take blocks another
writer relies on (2), ``artdag verify`` finds pins whose DAG lacks blocks (2), ``artdag init``
makes the home private (6a), identity CIDs are answered from the CID itself and capped at 128
bytes (6b). Real daemons on 127.0.0.1, the real ``artdag`` command, real HTTP."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from multiformats import CID, multibase, multihash

import dag
from dag import Block, CarError, FlatFsBlockstore, ImportParams
from dag.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, encode_node
from tests.harness.cli_helpers import ARTDAG, Home
from tests.harness.daemons import DaemonProcess, wait_until
from tests.harness.wire import uvarint

CHUNK = 4096


def identity_cid(data: bytes, codec: str = "raw") -> CID:
    return CID("base32", 1, codec, multihash.get("identity").wrap(data))


def inline_file_node(data: bytes) -> bytes:
    """A UnixFS file node holding ``data`` itself (what ``ipfs add --inline`` makes)."""
    meta = UnixFSData(UnixFSType.FILE, data=data, filesize=len(data))
    return encode_node(PBNode(data=meta.encode()))


def section(cid: CID, data: bytes) -> bytes:
    body = bytes(cid) + data
    return uvarint(len(body)) + body


async def car_of(store: dag.Blockstore, root: CID) -> bytes:
    return b"".join([piece async for piece in dag.iter_car(store, [root])])


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    node = DaemonProcess(tmp_path / "home", ARTDAG_CHUNK_SIZE=str(CHUNK)).start()
    try:
        yield node
    finally:
        node.stop()


# ------------------------------------------------ 2: a failed import and what others rely on


@pytest.mark.daemon
@pytest.mark.cli
def test_failed_car_import_leaves_an_asset_uploaded_meanwhile_whole(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    """The finding as reported: a valid CAR streams through a FIFO into ``artdag import``;
    meanwhile the same file is uploaded through the API (201, pinned); then the FIFO delivers
    a corrupt section. The asset must stay readable by ``artdag cat`` and the gateway."""
    data = os.urandom(10 * CHUNK + 123)

    async def build() -> tuple[CID, bytes]:
        scratch = FlatFsBlockstore(tmp_path / "scratch")
        try:
            result = await dag.import_file(scratch, io.BytesIO(data), ImportParams(CHUNK))
            return result.cid, await car_of(scratch, result.cid)
        finally:
            await scratch.aclose()

    root, car = trio.run(build)
    assert len(car) < 60_000  # fits in the pipe's buffer: the writes below never block
    corrupt_body = bytes(root) + b"not the bytes of the root"
    corrupt = uvarint(len(corrupt_body)) + corrupt_body

    fifo = tmp_path / "in.car"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a writer that never blocks on open
    importer = subprocess.Popen(
        [ARTDAG, "import", str(fifo)],
        env=daemon.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        os.write(fd, car)  # every valid section; the import stores each block as it arrives
        blocks = daemon.home / "store" / "blocks"
        expected = 11  # ten full chunks and the tail as raw leaves, plus the root node
        wait_until(
            lambda: sum(1 for _ in blocks.glob("*/*.data")) >= expected,
            60,
            "the import to store the valid blocks",
        )
        upload = daemon.api("POST", "/api/v1/assets", params={"name": "same.bin"}, content=data)
        assert upload.status_code == 201, upload.text
        assert upload.json()["cid"] == dag.cid_to_str(root)
        os.write(fd, corrupt)
    finally:
        os.close(fd)
        _out, err = importer.communicate(timeout=60)
    assert importer.returncode == 1, err.decode()
    assert "does not match" in err.decode()

    cid = dag.cid_to_str(root)
    cat = daemon.cli("cat", cid, check=False)
    assert cat.returncode == 0, cat.stderr.decode()
    assert cat.stdout == data
    gateway = daemon.api("GET", f"/ipfs/{cid}")
    assert gateway.status_code == 200, gateway.text[:300]
    assert gateway.content == data
    check = daemon.cli("verify", check=False)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


@pytest.mark.cli
def test_verify_names_a_pin_missing_a_block(tmp_path: Path) -> None:
    """A block file deleted by hand: the hashes of what is left are fine, but the pinned file
    is incomplete. ``artdag verify`` says which pin lacks which block and exits 1."""
    home = Home(tmp_path / "home")
    home.run("init")
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(5 * CHUNK))
    cid = home.last_line("add", "--chunk-size", str(CHUNK), str(source))
    assert home.run("verify").returncode == 0

    async def a_leaf() -> CID:
        store = FlatFsBlockstore(home.path / "store")
        try:
            return dag.links_of(dag.parse_cid(cid), await store.get(dag.parse_cid(cid)))[2]
        finally:
            await store.aclose()

    leaf = trio.run(a_leaf)
    key = dag.cid_to_str(leaf)
    path = next(p for p in (home.path / "store" / "blocks").glob("*/*.data") if _is(p, leaf))
    path.unlink()

    text = home.run("verify", check=False)
    assert text.returncode == 1
    out = text.stdout.decode()
    assert f"pin {cid} (recursive) is incomplete: missing 1 block: {key}" in out, out
    assert "2 pins, 2 incomplete" in text.stderr.decode()  # the file, and the record of it

    as_json = home.run("verify", "--json", check=False)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["bad"] == []
    entry = {"cid": cid, "recursive": True, "missing": [key], "missing_count": 1, "unreadable": []}
    assert entry in report["incomplete_pins"]
    assert len(report["incomplete_pins"]) == 2

    home.run("add", "--chunk-size", str(CHUNK), str(source))  # adding it again repairs it
    assert home.run("verify").returncode == 0


def _is(path: Path, cid: CID) -> bool:
    import base64

    key = base64.b32encode(bytes(cid.digest)).decode().rstrip("=")
    return path.name == key + ".data"


async def test_verify_walks_recursive_and_direct_pins(store: FlatFsBlockstore) -> None:
    leaf, other = Block.encode(b"leaf"), Block.encode(b"other")
    gone = Block.encode(b"never stored")
    parent = dag.record_block({"a": leaf.cid, "b": gone.cid})
    shared = dag.record_block({"a": leaf.cid})
    await store.put_many([leaf, other, parent, shared])
    await store.pin(parent.cid)
    await store.pin(shared.cid)
    await store.pin(other.cid, recursive=False)
    await store.pin(gone.cid, recursive=False)
    report = await store.verify()
    assert report.bad == [] and report.pins_checked == 4 and not report.ok
    incomplete = {pin.cid: pin for pin in report.incomplete}
    assert set(incomplete) == {parent.cid, gone.cid}
    assert incomplete[parent.cid].missing == (gone.cid,)
    assert incomplete[parent.cid].recursive
    assert not incomplete[gone.cid].recursive and incomplete[gone.cid].missing_count == 1
    await store.put(gone)
    assert (await store.verify()).ok


# ---------------------------------------------------------------------- 6a: a private home


@pytest.mark.daemon
@pytest.mark.cli
def test_init_makes_an_existing_home_and_everything_in_it_private(tmp_path: Path) -> None:
    """The README promises a 0700 home. A directory made beforehand with 0755 is tightened,
    and every file and directory init, a command and the daemon create is the owner's only
    (the SQLite -wal and -shm files included), even under the usual umask 022."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    old = os.umask(0o022)
    try:
        subprocess.run(
            [ARTDAG, "init", "--password-stdin"],
            env=Home(home).env(),
            input=b"a long enough password\n",
            check=True,
            capture_output=True,
        )
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        source = tmp_path / "f.bin"
        source.write_bytes(os.urandom(3 * CHUNK))
        Home(home).run("add", "--chunk-size", str(CHUNK), str(source))
        node = DaemonProcess(home).start()
        try:
            assert node.add_bytes(b"through the daemon", "x.txt")
            # while the daemon has its databases open (a last close removes the -wal)
            names = {p.name for p in home.rglob("*")}
            running = exposed_paths(home)
        finally:
            node.stop()
    finally:
        os.umask(old)
    for expected in ("config.toml", "identity.key", "api-token", "web-password", "index.db"):
        assert expected in names
    assert any(name.endswith("-wal") for name in names)
    assert any(name.endswith("-shm") for name in names)
    assert running == [], "readable by other users: " + ", ".join(running)
    stopped = exposed_paths(home)
    assert stopped == [], "readable by other users: " + ", ".join(stopped)


def exposed_paths(home: Path) -> list[str]:
    """Every file or directory in ``home`` (and itself) that group or others may access."""
    found = []
    for path in [home, *home.rglob("*")]:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except FileNotFoundError:
            continue  # a -wal or temporary file gone meanwhile
        if mode & 0o077:
            found.append(f"{path.relative_to(home)} {mode:o}")
    return found


async def test_open_sqlite_makes_an_existing_database_private(tmp_path: Path) -> None:
    from dag.sqlite_db import open_sqlite

    path = tmp_path / "old.db"
    conn = open_sqlite(path)
    conn.execute("create table t (x)")
    conn.commit()
    conn.close()
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            name.chmod(0o644)
    open_sqlite(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --------------------------------------------------------------------- 6b: identity CIDs


async def test_identity_cids_come_from_the_cid_and_are_never_written(
    store: FlatFsBlockstore,
) -> None:
    raw = identity_cid(b"hello")
    block = Block.checked(raw, b"hello")
    await store.put(block)
    assert [c async for c in store.cids()] == []  # nothing on disk
    assert await store.has(raw)
    assert await store.get(raw) == b"hello"
    await store.delete(raw)
    assert await store.get(raw) == b"hello"
    with pytest.raises(dag.BlockCorrupt):
        Block.checked(raw, b"other")


async def test_identity_digests_over_128_bytes_are_refused() -> None:
    ok = identity_cid(b"x" * 128)
    assert dag.parse_cid(dag.cid_to_str(ok)) == ok
    too_long = identity_cid(b"x" * 129)
    with pytest.raises(dag.CidError, match=r"identity CID too long: .* 129 bytes, at most 128"):
        dag.parse_cid(dag.cid_to_str(too_long))
    with pytest.raises(dag.CidError):
        dag.parse_cid(bytes(too_long))
    with pytest.raises(CarError, match="identity CID too long"):
        dag.CarReader().feed(dag.car.encode_header([ok]) + section(too_long, b"x" * 129))


async def test_gc_follows_links_out_of_an_identity_node(store: FlatFsBlockstore) -> None:
    """An inlined dag-pb directory links to a stored block: pinning the directory keeps it."""
    child = Block.encode(b"a stored child")
    await store.put(child)
    meta = UnixFSData(UnixFSType.DIRECTORY).encode()
    node = encode_node(PBNode(links=(PBLink(child.cid, 14, "c"),), data=meta))
    directory = identity_cid(node, "dag-pb")
    await store.pin(directory)
    old = time.time() - 3600
    for path in store.blocks_dir.glob("*/*.data"):
        os.utime(path, (old, old))
    report = await store.collect_garbage(grace_s=60)
    assert report.removed == 0
    assert await store.get(child.cid) == b"a stored child"
    assert (await store.verify()).ok


async def test_a_car_holding_identity_blocks_imports(store: FlatFsBlockstore) -> None:
    inlined = identity_cid(b"tiny")
    file_node = inline_file_node(b"inlined file")
    inlined_file = identity_cid(file_node, "dag-pb")
    root = dag.record_block({"tiny": inlined, "file": inlined_file})
    car = (
        dag.car.encode_header([root.cid])
        + section(root.cid, root.data)
        + section(inlined, b"tiny")
        + section(inlined_file, file_node)
    )
    result = await dag.import_car(store, one_chunk(car))
    assert result.roots == [root.cid] and result.blocks == 3
    assert [p.cid for p in await store.pins()] == [root.cid]
    assert (await store.verify()).ok
    assert b"".join([c async for c in dag.read_file(store, inlined_file)]) == b"inlined file"

    wrong = dag.car.encode_header([inlined]) + section(inlined, b"TINY")
    with pytest.raises(CarError, match="does not match"):
        await dag.import_car(store, one_chunk(wrong))


async def test_bitswap_never_wants_an_identity_cid(store: FlatFsBlockstore) -> None:
    from p2p.bitswap.client import BlockClient
    from p2p.bitswap.stats import BitswapStats

    sent: list[object] = []
    client = BlockClient(
        store,
        BitswapStats(),
        peers=lambda: ["peer"],
        deliver=sent.extend,
        peer_id_of=lambda _peer: None,  # type: ignore[arg-type,return-value]
        blocks_added=lambda _keys: None,
        max_block_bytes=1 << 20,
        block_timeout=1.0,
    )
    with trio.fail_after(5):
        assert await client.get_block(identity_cid(b"inline")) == b"inline"
    assert sent == []


@pytest.mark.daemon
def test_the_gateway_serves_identity_cids_without_any_peer(daemon: DaemonProcess) -> None:
    raw = identity_cid(b"served from the CID")
    file_node = inline_file_node(b"an inlined UnixFS file")
    pb = identity_cid(file_node, "dag-pb")
    with daemon.http() as client:
        got = client.get(f"/ipfs/{dag.cid_to_str(raw)}")
        assert got.status_code == 200, got.text[:300]
        assert got.content == b"served from the CID"
        got = client.get(f"/ipfs/{dag.cid_to_str(pb)}")
        assert got.status_code == 200, got.text[:300]
        assert got.content == b"an inlined UnixFS file"
        huge = dag.cid_to_str(identity_cid(os.urandom(5000)))
        got = client.get(f"/ipfs/{huge}")
        assert got.status_code == 400, got.text[:300]
        assert "identity CID too long" in got.text and "5000 bytes" in got.text
        sha_huge = bytes([1, 0x55, 0x12]) + uvarint(5000) + bytes(5000)
        got = client.get(f"/ipfs/{multibase.encode(sha_huge, 'base32')}")
        assert got.status_code == 400, got.text[:300]
