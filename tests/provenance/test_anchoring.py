"""OpenTimestamps anchoring: Merkle batches of claims, calendar stamping, upgrade, verification.

The calendar is the TEST CALENDAR SERVER of ``tests/peers/ots_calendar.py`` (a real HTTP server on
127.0.0.1 speaking the calendar protocol, with synthetic Bitcoin blocks), because the public
calendars need the internet and hours of real mining. The ``.ots`` files are read by the real
``ots`` command of opentimestamps-client (``ots info`` is offline: it only parses the file).
"""

from __future__ import annotations

import itertools
import re
import socket
import sys
from pathlib import Path

import pytest
import trio

import dag
from daemon.core.ownership.anchors import AnchorService
from provenance import Identity, sign_record, utc_timestamp, verify_signed
from provenance.anchoring import (
    AnchorError,
    batch_root,
    leaf_path,
    parse_ots,
    verify_header,
    verify_leaf,
)
from provenance.merkle import MerkleProof
from tests.peers.ots_calendar import TestCalendar

OTS = str(Path(sys.executable).with_name("ots"))


def _claims(identity: Identity, n: int) -> list[dag.Block]:
    blocks = []
    for i in range(n):
        subject = dag.Block.encode(f"work {i}".encode(), codec="raw").cid
        record = {
            "type": "claim",
            "version": 1,
            "subject": subject,
            "split": {"footage": 4000, "effects": 2500, "recipe": 2000, "infrastructure": 1500},
            "created": utc_timestamp(),
        }
        blocks.append(dag.record_block(sign_record(record, identity)))
    return blocks


async def _ots_info(path: str, home: Path) -> str:
    proc = await trio.run_process(
        [OTS, "--no-cache", "info", path],
        capture_stdout=True,
        capture_stderr=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    return proc.stdout.decode()


@pytest.fixture
def identity() -> Identity:
    return Identity.generate()


def _service(
    tmp_path: Path, store: dag.Blockstore, identity: Identity, calendars: list[str], headers: object
) -> AnchorService:
    return AnchorService(
        store,
        identity,
        tmp_path / "index.db",
        tmp_path,
        calendars,
        headers,  # type: ignore[arg-type]
    )


def test_leaf_paths_verify_and_tampered_leaf_fails(identity: Identity) -> None:
    cids = [b.cid for b in _claims(identity, 7)]
    root = batch_root(cids)
    for cid in cids:
        path = leaf_path(cids, cid)
        assert path.root == root and path.steps[-1].result == root
        assert verify_leaf(root, cid, path.proof)
    path = leaf_path(cids, cids[3])
    assert not verify_leaf(root, cids[4], path.proof)  # another record at that position
    tampered = MerkleProof(3, 7, (bytes(32), *path.proof.path[1:]))
    assert not verify_leaf(root, cids[3], tampered)
    with pytest.raises(AnchorError, match="twice"):
        batch_root([cids[0], cids[0]])


@pytest.mark.slow
async def test_anchor_upgrade_verify_against_test_calendar(
    tmp_path: Path, calendar: TestCalendar, identity: Identity, store: dag.FlatFsBlockstore
) -> None:
    claims = _claims(identity, 5)
    await store.put_many(claims)
    cids = [b.cid for b in claims]
    async with _service(tmp_path, store, identity, [calendar.url], calendar.url) as service:
        row = await service.anchor(cids)
        assert row.status == "pending" and calendar.submissions == 1
        assert row.root == batch_root(cids).hex()
        assert Path(row.ots_path).parent == tmp_path / "anchors"

        # The real `ots info` reads our file and prints our Merkle root as the file digest.
        info = await _ots_info(row.ots_path, tmp_path)
        assert re.search(r"^File sha256 hash: ([0-9a-f]{64})$", info, re.M)
        assert f"File sha256 hash: {row.root}" in info
        assert f"PendingAttestation('{calendar.url}')" in info

        # The signed anchor record is stored and commits to the same root and leaves.
        record = dag.decode_dagcbor(await store.get(dag.parse_cid(row.record)))
        verify_signed(record)
        assert record["root"].hex() == row.root and record["leaves"] == cids

        # Not mined yet: upgrade finds nothing, verification says pending.
        assert await service.upgrade_all() == []
        report = await service.verify(cids[0])
        assert not report.ok and "pending" in report.reason
        assert service.earliest_time(cids[0]) is None

        block = calendar.mine(when=1_700_000_123)
        [done] = await service.upgrade_all()
        assert done.status == "complete" and done.block_height == block.height
        info = await _ots_info(row.ots_path, tmp_path)
        assert f"File sha256 hash: {row.root}" in info
        assert f"BitcoinBlockHeaderAttestation({block.height})" in info
        assert f"Bitcoin block merkle root {block.header[36:68][::-1].hex()}" in info

        for cid in cids:
            report = await service.verify(cid)
            assert report.ok, report.reason
            assert report.block_time == 1_700_000_123 and report.block_hash == block.hash
            assert report.leaf_path is not None and report.leaf_path.root.hex() == row.root
            assert report.ots_steps[-1].result == report.attestation.msg  # type: ignore[union-attr]
            assert report.ots_steps[-1].result == block.header[36:68]
        assert service.earliest_time(cids[2]) == 1_700_000_123.0
        anchored = service.anchor_of(cids[1])
        assert anchored is not None and anchored.status == "verified"

        with pytest.raises(AnchorError, match="already anchored"):
            await service.anchor(cids[:2])


async def test_wrong_header_fails_with_reason(
    tmp_path: Path, calendar: TestCalendar, identity: Identity, store: dag.FlatFsBlockstore
) -> None:
    claims = _claims(identity, 3)
    await store.put_many(claims)
    cids = [b.cid for b in claims]
    good: dict[int, tuple[str, bytes]] = {}

    class Headers:
        """Serves another block's header (consistent hash, wrong merkle root)."""

        async def header(self, height: int) -> tuple[str, bytes]:
            return good[height]

    async with _service(tmp_path, store, identity, [calendar.url], Headers()) as service:
        row = await service.anchor(cids)
        block = calendar.mine()
        await service.upgrade_all()
        calendar.submit(bytes(32))  # something else for the next block
        other = calendar.mine()
        good[block.height] = (other.hash, other.header)
        report = await service.verify(cids[1])
        assert not report.ok
        assert f"block {block.height} has merkle root" in report.reason
        assert service.earliest_time(cids[1]) is None

        ots = parse_ots(Path(row.ots_path).read_bytes())
        assert verify_header(ots, block.header, expected_hash=block.hash).ok
        changed = bytearray(block.header)
        changed[68] ^= 0x01  # the block time
        verdict = verify_header(ots, bytes(changed), expected_hash=block.hash)
        assert not verdict.ok and f"but block {block.height} is {block.hash}" in verdict.reason
        assert "80 bytes" in verify_header(ots, block.header[:79]).reason

        # The right header makes it verify and sets the attested time.
        good[block.height] = (block.hash, block.header)
        assert (await service.verify(cids[1])).ok
        assert service.earliest_time(cids[1]) == float(block.time)


async def test_bad_input_and_unreachable_calendar(
    tmp_path: Path, calendar: TestCalendar, identity: Identity, store: dag.FlatFsBlockstore
) -> None:
    claims = _claims(identity, 2)
    await store.put_many(claims)
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    async with _service(tmp_path, store, identity, [dead], calendar.url) as service:
        with pytest.raises(AnchorError, match="no calendar accepted"):
            await service.anchor([claims[0].cid])
        assert service.anchors() == []
    async with _service(tmp_path, store, identity, [dead, calendar.url], calendar.url) as service:
        raw = dag.Block.encode(b"not a record", codec="raw").cid
        with pytest.raises(AnchorError, match="not a record"):
            await service.anchor([raw])
        missing = dag.record_block({"x": 1}).cid
        with pytest.raises(AnchorError, match="not in the store"):
            await service.anchor([missing])
        row = await service.anchor([c.cid for c in claims])
        assert row.calendars == [calendar.url]
        with pytest.raises(AnchorError, match="in no anchor"):
            await service.verify(missing)


async def test_cli_anchor_anchors_verify_anchor(tmp_path: Path, calendar: TestCalendar) -> None:
    """The three commands, run in-process with click's runner (in a worker thread: each command
    runs its own trio loop) against a node home and the test calendar."""
    import click
    from click.testing import CliRunner

    from daemon.cli.anchor import anchor, anchors, verify_anchor
    from daemon.config import load_config
    from daemon.core.node import open_node

    config = load_config(tmp_path / "home")
    async with open_node(config) as node:
        claims = _claims(node.identity, 3)
        await node.store.put_many(claims)
        for block in claims:
            record = dag.decode_dagcbor(block.data)
            node.index.put_record(
                str(block.cid), "claim", record["signer"], record["created"], str(record["subject"])
            )

    @click.group()
    def main() -> None:
        pass

    for command in (anchor, anchors, verify_anchor):
        main.add_command(command)
    where = ["--calendar", calendar.url, "--headers", calendar.url]

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), obj={"config": config})
        return result.exit_code, result.output

    code, out = await trio.to_thread.run_sync(run, "anchor", *where)
    assert code == 0, out
    roots = {batch_root(order).hex() for order in itertools.permutations([b.cid for b in claims])}
    assert re.search(r"anchored 3 records, root ([0-9a-f]{64})", out)[1] in roots  # type: ignore[index]
    code, out = await trio.to_thread.run_sync(run, "anchor", *where)
    assert code == 0 and "nothing to anchor" in out
    calendar.mine(when=1_700_000_000)
    code, out = await trio.to_thread.run_sync(run, "anchors", "--upgrade", *where)
    assert code == 0 and "complete" in out and "block 800000" in out
    code, out = await trio.to_thread.run_sync(run, "verify-anchor", str(claims[1].cid), *where)
    assert code == 0, out
    assert re.search(rf"^leaf   {claims[1].cid}  \(#[012] of 3\)$", out, re.M)
    assert "attest Bitcoin block 800000" in out
    assert "OK: Bitcoin block 800000 attests the batch root" in out
    assert "2023-11-14T22:13:20Z" in out
    other = dag.record_block({"x": 2}).cid
    code, out = await trio.to_thread.run_sync(run, "verify-anchor", str(other), *where)
    assert code == 1 and "is in no anchor" in out
