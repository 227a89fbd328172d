"""Ownership across two real daemons: Alice claims a clip and anchors the claim with the TEST
CALENDAR SERVER (``tests/peers/ots_calendar.py``, OpenTimestamps' calendar protocol on
127.0.0.1); Bob claims a brightened re-encode of it on his own node. The claims travel by
gossip with their perceptual fingerprints, both nodes flag the near-duplicate, and Alice's
anchored claim wins the dispute. Everything is real: daemon processes, py-libp2p, ffmpeg, the
``artdag`` CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import trio

from tests.harness.daemons import ARTDAG, DaemonProcess, daemon_line
from tests.harness.media import make_video, run_ffmpeg_cli
from tests.peers.ots_calendar import TestCalendar

pytestmark = pytest.mark.slow


async def cli(daemon: DaemonProcess, *args: str) -> tuple[str, str]:
    proc = await trio.run_process(
        [ARTDAG, *args], env=daemon.env(), capture_stdout=True, capture_stderr=True, check=False
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, f"artdag {' '.join(args)}: {err}"
    return out, err


def indexed_fingerprint(daemon: DaemonProcess, subject: str) -> bool:
    """Has the daemon indexed a claimed work's fingerprint (it does so after verifying the
    claim; the record's block itself is stored before that)?"""
    with sqlite3.connect(daemon.home / "index.db") as db:
        rows = db.execute("select 1 from fingerprints where subject = ?", [subject]).fetchall()
    return bool(rows)


async def eventually(predicate: object, timeout: float, what: str) -> None:
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(predicate):  # type: ignore[arg-type]
            await trio.sleep(0.2)


async def test_a_copy_claimed_elsewhere_is_disputed_and_the_anchored_claim_wins(
    tmp_path: Path, calendar: TestCalendar
) -> None:
    original = make_video(tmp_path / "original.mkv", seconds=4)
    copy = tmp_path / "copy.mp4"
    run_ffmpeg_cli(["-i", str(original), "-vf", "eq=brightness=0.1", "-c:v", "libx264",
                    "-crf", "30", "-c:a", "aac", "-y", str(copy)])  # fmt: skip
    env = {"ARTDAG_ANCHOR_CALENDARS": calendar.url, "ARTDAG_ANCHOR_HEADER_SOURCE": calendar.url}
    with daemon_line(tmp_path / "nodes", 2, **env) as (alice, bob):
        work = alice.add_bytes(original.read_bytes(), "original.mkv")["cid"]
        out, _ = await cli(alice, "claim", work, "--split", "footage=70", "--split", "recipe=30",
                           "--license", "CC-BY-4.0")  # fmt: skip
        claim_a = out.split()[-1]
        out, _ = await cli(alice, "anchor")
        calendar.mine(when=1_700_000_000)
        await cli(alice, "anchors", "--upgrade")
        out, _ = await cli(alice, "verify-anchor", claim_a)
        assert "OK" in out

        await eventually(lambda: indexed_fingerprint(bob, work), 30, "Alice's claim at Bob's")
        copied = bob.add_bytes(copy.read_bytes(), "copy.mp4")["cid"]
        # the daemon fingerprints every media asset it holds, claimed or not
        await eventually(lambda: indexed_fingerprint(bob, copied), 60, "the copy fingerprinted")
        out, err = await cli(bob, "claim", copied)
        claim_b = out.split()[-1]
        assert "disputed (near-duplicate)" in err, err

        await eventually(lambda: alice.has_record(claim_b), 30, "Bob's claim on Alice's node")
        out, _ = await cli(alice, "disputes", "--json")
        disputes = json.loads(out)
        assert len(disputes) == 1, disputes
        dispute = disputes[0]
        assert dispute["reason"] == "near-duplicate"
        assert dispute["winner"]["claim"] == claim_a
        assert dispute["winner"]["anchored_at"] == 1_700_000_000
        assert {c["claim"] for c in dispute["claims"]} == {claim_a, claim_b}
        assert any("similarity" in line for line in dispute["evidence"])
        # the claim carries what the owner said and is part of the provenance graph
        record = alice.api("GET", f"/api/v1/records/{claim_a}").json()["record"]
        assert record["split"] == {"footage": 7000, "recipe": 3000}
        assert record["license"] == "CC-BY-4.0" and "fingerprint" in record
