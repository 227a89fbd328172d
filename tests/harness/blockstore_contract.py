"""A reusable contract every :class:`dag.Blockstore` must meet.

Use it by subclassing :class:`BlockstoreContract` in a test module and providing a ``store``
fixture (an async generator fixture is fine under pytest-trio's ``trio_mode``)::

    from tests.harness.blockstore_contract import BlockstoreContract

    class TestKuboContract(BlockstoreContract):
        exclusive = False          # the node holds blocks this test did not put
        delete_pinned = False      # Kubo refuses to remove a pinned block

        @pytest.fixture
        async def store(self, js_ipfs):
            store = dag.KuboBlockstore(js_ipfs.api_url)
            try:
                yield store
            finally:
                await store.aclose()

Every test writes random bytes, so many runs can share one long-lived node. Nothing here is
specific to one backend: FlatFs-only behaviour lives in ``test_dag_flatfs.py``.
"""

from __future__ import annotations

import os

import pytest
from multiformats import CID, multihash

import dag
from dag import Block, BlockNotFound, Blockstore, Pin

__all__ = ["BlockstoreContract", "random_block"]


def random_block(size: int = 64, codec: str = "raw", **kwargs) -> Block:
    return Block.encode(os.urandom(size), codec, **kwargs)


def random_pb_block(version: int = 1) -> Block:
    """A valid dag-pb node (a UnixFS file leaf with random content)."""
    payload = os.urandom(40)
    # PBNode{Data: UnixFS{Type: File, Data: payload, filesize}}
    unixfs = b"\x08\x02\x12" + bytes([len(payload)]) + payload + b"\x18" + bytes([len(payload)])
    node = b"\x0a" + bytes([len(unixfs)]) + unixfs
    return Block.encode(node, "dag-pb", version=version)


def _digests(cids: list[CID]) -> list[bytes]:
    return [bytes(c.digest) for c in cids]


async def _all_cids(store: Blockstore) -> list[CID]:
    return [cid async for cid in store.cids()]


def _pin_map(pins: list[Pin]) -> dict[CID, bool]:
    return {p.cid: p.recursive for p in pins}


class BlockstoreContract:
    """Behaviour every Blockstore must have. Subclasses provide the ``store`` fixture."""

    #: the store holds exactly what the test put (so cids()/pins() can be compared exactly)
    exclusive: bool = True
    #: delete() removes a block even while it is pinned
    delete_pinned: bool = True

    @pytest.fixture
    async def store(self):  # pragma: no cover - overridden
        raise NotImplementedError("a BlockstoreContract subclass must define a `store` fixture")
        yield

    # -- put / get / has -------------------------------------------------------------------

    async def test_put_then_get_returns_the_bytes(self, store):
        for block in (
            random_block(1),
            random_block(1000),
            random_block(0),
            random_pb_block(),
            dag.record_block({"type": "asset", "n": os.urandom(8)}),
        ):
            await store.put(block)
            assert await store.has(block.cid)
            assert await store.get(block.cid) == block.data

    async def test_large_block(self, store):
        block = random_block(1 << 20)
        await store.put(block)
        assert await store.get(block.cid) == block.data

    async def test_get_missing_raises_block_not_found(self, store):
        missing = random_block().cid
        assert not await store.has(missing)
        with pytest.raises(BlockNotFound) as info:
            await store.get(missing)
        assert isinstance(info.value, KeyError)
        assert isinstance(info.value, dag.DagError)
        assert missing.encode("base32") in str(info.value)
        assert "\n" not in str(info.value)

    async def test_put_twice_is_fine(self, store):
        block = random_block(300)
        await store.put(block)
        await store.put(block)
        await store.put_many([block, block])
        assert await store.get(block.cid) == block.data
        listed = _digests(await _all_cids(store))
        assert listed.count(bytes(block.cid.digest)) == 1

    async def test_put_many(self, store):
        blocks = [random_block(n) for n in (1, 10, 100, 1000)]
        await store.put_many(blocks)
        await store.put_many([])
        for block in blocks:
            assert await store.get(block.cid) == block.data

    async def test_other_hash_functions(self, store):
        for hashfun in ("sha3-256", "sha2-512"):
            block = random_block(200, hashfun=hashfun)
            await store.put(block)
            assert await store.get(block.cid) == block.data

    async def test_cidv0_block_is_found_by_its_v1_form_too(self, store):
        block = random_pb_block(version=0)
        assert block.cid.version == 0
        await store.put(block)
        v1 = CID("base32", 1, "dag-pb", block.cid.digest)
        assert await store.has(block.cid)
        assert await store.has(v1)
        assert await store.get(block.cid) == block.data
        assert await store.get(v1) == block.data

    # -- delete ----------------------------------------------------------------------------

    async def test_delete(self, store):
        keep, gone = random_block(), random_block()
        await store.put_many([keep, gone])
        await store.delete(gone.cid)
        assert not await store.has(gone.cid)
        with pytest.raises(BlockNotFound):
            await store.get(gone.cid)
        assert await store.get(keep.cid) == keep.data
        assert bytes(gone.cid.digest) not in _digests(await _all_cids(store))
        # deleting twice, or something never stored, is a no-op
        await store.delete(gone.cid)
        await store.delete(random_block().cid)
        # and it can be stored again
        await store.put(gone)
        assert await store.get(gone.cid) == gone.data

    # -- identity CIDs (issue 16) ----------------------------------------------------------

    async def test_identity_cids_are_answered_from_the_cid(self, store):
        """An identity CID holds its block: every store answers it without storing anything
        (and without asking a node or the network), and never deletes it."""
        data = os.urandom(20)
        cid = CID("base32", 1, "raw", multihash.get("identity").wrap(data))
        await store.put(Block.checked(cid, data))
        assert await store.has(cid)
        assert await store.get(cid) == data
        await store.delete(cid)
        assert await store.get(cid) == data
        assert bytes(cid.digest) not in _digests(await _all_cids(store))

    # -- cids ------------------------------------------------------------------------------

    async def test_cids_lists_every_block_by_multihash(self, store):
        blocks = [random_block(), random_pb_block(), dag.record_block({"x": os.urandom(4)})]
        await store.put_many(blocks)
        listed = await _all_cids(store)
        assert all(isinstance(c, CID) for c in listed)
        digests = _digests(listed)
        for block in blocks:
            assert bytes(block.cid.digest) in digests
        if self.exclusive:
            assert sorted(digests) == sorted(bytes(b.cid.digest) for b in blocks)

    async def test_empty_store_lists_nothing(self, store):
        """Only for stores a test has to itself (a shared node sets this test to None)."""
        assert await _all_cids(store) == []
        assert await store.pins() == []

    # -- pins ------------------------------------------------------------------------------

    async def test_pin_unpin_pins(self, store):
        leaf = random_block()
        record = dag.record_block({"type": "asset", "file": leaf.cid})
        direct = random_block()
        await store.put_many([leaf, record, direct])
        before = _pin_map(await store.pins())
        assert record.cid not in before

        await store.pin(record.cid)
        await store.pin(direct.cid, recursive=False)
        pins = _pin_map(await store.pins())
        assert pins.get(record.cid) is True
        assert pins.get(direct.cid) is False
        if self.exclusive:
            assert set(pins) == {record.cid, direct.cid}

        await store.pin(record.cid)  # pinning again keeps one pin
        listed = [p.cid for p in await store.pins()]
        assert listed.count(record.cid) == 1

        await store.unpin(record.cid)
        pins = _pin_map(await store.pins())
        assert record.cid not in pins
        assert pins.get(direct.cid) is False
        await store.unpin(direct.cid)
        assert direct.cid not in _pin_map(await store.pins())
        # unpinning what is not pinned is a no-op
        await store.unpin(direct.cid)
        await store.unpin(random_block().cid)
        # unpinning does not delete
        assert await store.get(record.cid) == record.data
        assert await store.get(leaf.cid) == leaf.data

    async def test_pins_returns_pin_objects(self, store):
        block = random_block()
        await store.put(block)
        await store.pin(block.cid)
        pins = [p for p in await store.pins() if p.cid == block.cid]
        assert pins == [Pin(block.cid, True)]
        assert isinstance(pins[0].cid, CID)
        await store.unpin(block.cid)

    async def test_pin_reasons(self, store):
        """A CID stays pinned while any reason remains; dropping one reason keeps the others."""
        block = random_block()
        await store.put(block)
        await store.pin(block.cid, reason="popular")
        await store.pin(block.cid, reason="local")
        pin = [p for p in await store.pins() if p.cid == block.cid]
        assert pin == [Pin(block.cid, True, ("local", "popular"))]
        await store.unpin(block.cid, reason="popular")
        pin = [p for p in await store.pins() if p.cid == block.cid]
        assert pin == [Pin(block.cid, True, ("local",))]
        await store.unpin(block.cid, reason="followed")  # a reason it never had: no-op
        assert block.cid in _pin_map(await store.pins())
        await store.unpin(block.cid, reason="local")
        assert block.cid not in _pin_map(await store.pins())

    async def test_pin_reason_recursion(self, store):
        """Recursive if any reason is; direct again once the recursive reason goes."""
        leaf = random_block()
        root = dag.record_block({"type": "asset", "file": leaf.cid})
        await store.put_many([leaf, root])
        await store.pin(root.cid, recursive=False, reason="explicit")
        await store.pin(root.cid, reason="remote")
        assert _pin_map(await store.pins()).get(root.cid) is True
        await store.unpin(root.cid, reason="remote")
        assert _pin_map(await store.pins()).get(root.cid) is False
        await store.unpin(root.cid)
        assert root.cid not in _pin_map(await store.pins())

    async def test_unknown_pin_reason_refused(self, store):
        block = random_block()
        await store.put(block)
        with pytest.raises(dag.StoreError, match="unknown pin reason"):
            await store.pin(block.cid, reason="because")
        assert block.cid not in _pin_map(await store.pins())

    async def test_delete_of_pinned_block(self, store):
        """Stores that refuse this (Kubo) override it with a test of the refusal."""
        block = random_block()
        await store.put(block)
        await store.pin(block.cid)
        await store.delete(block.cid)
        assert not await store.has(block.cid)

    # -- verify / flush --------------------------------------------------------------------

    async def test_verify_healthy_store(self, store):
        blocks = [random_block(n) for n in (0, 5, 5000)] + [random_pb_block()]
        await store.put_many(blocks)
        report = await store.verify()
        assert report.ok
        assert report.bad == []
        assert report.checked >= len(blocks)
        if self.exclusive:
            assert report.checked == len(blocks)

    async def test_flush(self, store):
        blocks = [random_block(100) for _ in range(5)]
        await store.put_many(blocks)
        await store.flush()
        await store.flush()  # twice, and with nothing new
        for block in blocks:
            assert await store.get(block.cid) == block.data
