"""Five ``artdag daemon`` processes on 127.0.0.1: records spread, bad peers are caught, a
stopped daemon catches up. Everything is real: separate processes, py-libp2p over loopback,
gossip, bitswap, the HTTP API and the CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trio

from dag import cid_to_str, encode_dagcbor
from p2p.gossip import HEADS, Gossip, make_head_message
from p2p.host import connect, running_host
from provenance import Identity, record_cid
from tests.harness.bitswap_peers import lying_peer
from tests.harness.daemons import DaemonProcess, daemon_line, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[DaemonProcess]]:
    with daemon_line(tmp_path_factory.mktemp("five"), 5) as daemons:
        # Everyone bootstrapped to d0: wait until d0 sees the other four.
        wait_until(lambda: len(daemons[0].peers()) >= 4, 30, "d0 to connect to 4 peers")
        yield daemons


def test_a_record_added_on_one_daemon_reaches_all_and_is_verified(
    five: list[DaemonProcess],
) -> None:
    asset = five[2].add_bytes(os.urandom(300_000), "clip.bin")
    record = asset["record"]
    took = wait_until(
        lambda: all(d.has_record(record) for d in five), 30, "the record on every daemon"
    )
    print(f"record reached 5 daemons in {took:.2f} s")
    for d in five:
        body = d.api("GET", f"/api/v1/records/{record}").json()
        # /records verifies schema and signature before answering
        assert body["record"]["signer"] == five[2].info["did"]
        assert body["record"]["root"] == {"/": asset["cid"]}
    # the asset's bytes are fetchable from any daemon by CID (bitswap), and equal
    out = five[4].home / "fetched.bin"
    proc = five[4].cli("get", asset["cid"], "-o", str(out))
    assert proc.stdout.decode().strip().splitlines()[-1] == asset["cid"]
    assert out.read_bytes() == five[2].api("GET", f"/api/v1/assets/{asset['cid']}/content").content


def test_artdag_add_beside_a_running_daemon_is_gossiped(five: list[DaemonProcess]) -> None:
    """``artdag add`` in another process appends to the repo; the daemon notices and gossips."""
    src = five[1].home / "note.txt"
    src.write_bytes(b"made on the command line\n")
    cid = five[1].cli("add", str(src)).stdout.decode().strip().splitlines()[-1]
    row = five[1].api("GET", f"/api/v1/assets/{cid}").json()
    wait_until(lambda: all(d.has_record(row["record"]) for d in five), 30, "the CLI record")


async def test_tampered_and_replayed_messages_are_rejected_and_score_drops(
    five: list[DaemonProcess],
) -> None:
    target = five[0]
    identity = Identity.generate()
    async with running_host() as host, trio.open_nursery() as nursery:
        gossip = Gossip(host, [HEADS], identity=identity)
        await nursery.start(gossip.run)
        peer = await connect(host, target.p2p_addr)
        await gossip.wait_for_mesh(peer, HEADS.name, timeout=15)

        message = make_head_message(identity, 0, record_cid({"type": "x", "n": 0}))
        await gossip.publish(HEADS.name, message)
        await trio.sleep(0.3)
        await gossip.pubsub.publish(HEADS.name, encode_dagcbor(message))  # replay
        forged = {**make_head_message(identity, 1, record_cid({"type": "x"})), "seq": 9}
        await gossip.pubsub.publish(HEADS.name, encode_dagcbor(forged))  # tampered

        me = host.get_id().to_base58()

        def charged() -> bool:
            rows = [r for r in target.peers() if r["peer_id"] == me]
            return bool(rows) and rows[0]["invalid"] >= 2

        await trio.to_thread.run_sync(lambda: wait_until(charged, 15, "the rogue to be charged"))
        row = next(r for r in target.peers() if r["peer_id"] == me)
        assert row["invalid_reasons"] == {"replay": 1, "bad-signature": 1}
        assert row["score"] < 0
        # the other daemons never saw the bad messages (not forwarded)
        for d in five[1:]:
            for r in d.peers():
                assert r["invalid"] == 0, (d.home, r)
        nursery.cancel_scope.cancel()


def test_a_daemon_stopped_during_publishing_catches_up_after_restart(tmp_path: Path) -> None:
    with daemon_line(tmp_path, 3) as daemons:
        a, _b, c = daemons
        wait_until(lambda: len(a.peers()) >= 2, 30, "a to see both peers")
        records = [a.add_bytes(os.urandom(2000), "first.bin")["record"]]
        wait_until(lambda: c.has_record(records[0]), 30, "the first record on c")
        c.kill()  # stopped hard while a keeps publishing
        for i in range(5):
            records.append(a.add_bytes(os.urandom(2000), f"while-down-{i}.bin")["record"])
        c.start()
        took = wait_until(
            lambda: all(c.has_record(r) for r in records), 60, "c to catch up on 6 records"
        )
        print(f"caught up in {took:.2f} s after restart")


async def test_a_peer_serving_wrong_bytes_is_caught_and_the_block_refused(
    five: list[DaemonProcess],
) -> None:
    """The liar is a real py-libp2p host speaking bitswap 1.2.0 that answers every want-block
    with the right CID prefix but other bytes (tests/p2p/test_bitswap.py)."""
    target = five[3]
    wanted = cid_to_str(record_cid({"type": "x", "only": "the liar claims to have this"}))
    lies: list[int] = []
    async with lying_peer(lies) as liar:
        await connect(liar, target.p2p_addr)
        me = liar.get_id().to_base58()
        proc = await trio.to_thread.run_sync(
            lambda: target.cli("get", wanted, "--timeout", "3", check=False)
        )
        rows = await trio.to_thread.run_sync(target.peers)
    assert proc.returncode == 1
    assert "artdag: error:" in proc.stderr.decode() and wanted in proc.stderr.decode()
    assert lies, "the daemon never asked the liar"
    row = next(r for r in rows if r["peer_id"] == me)
    assert row["bad_blocks"] >= 1
    assert row["invalid_reasons"].get("bad-block", 0) >= 1
    assert row["score"] < 0
    # nothing the liar sent was stored
    assert target.cli("dag", "get", wanted, check=False).returncode == 1


def test_idle_daemons_do_not_spin(five: list[DaemonProcess]) -> None:
    """An idle daemon sleeps: a busy loop (as once in the dial loop, once every peer was
    connected) would burn a core and starve everything else on the machine."""
    procs = [psutil.Process(d.pid) for d in five]
    before = [sum(p.cpu_times()[:2]) for p in procs]
    time.sleep(3)
    used = [sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before, strict=True)]
    assert max(used) < 1.5, f"CPU seconds used in 3 s of idling: {used}"  # a spin uses ~3
