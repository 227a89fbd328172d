"""The crash campaign in short (``bench/crash.py`` runs it with 100 kills), and the bugs it
found, each as a test of its own (each seen failing before its fix: the first two fixed with
the campaign, the other four in commit 783934d, strict expected failures until then)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import trio

from dag.sqlite_db import open_sqlite
from tests.harness.ap_remote import remote_server
from tests.harness.crash_campaign import (
    CampaignSettings,
    campaign_daemon,
    kill_schedule,
    run_campaign,
)
from tests.harness.daemons import DaemonProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.daemon
@pytest.mark.slow
def test_five_kills_leave_nothing_corrupt_lost_or_duplicated(tmp_path: Path) -> None:
    settings = CampaignSettings(workdir=tmp_path, kills=5, seed=16, max_seconds=240)
    result = trio.run(run_campaign, settings)
    report = "\n".join(result.report())
    assert result.kills == 5, report
    assert not result.stopped_early, report
    ops = result.ops
    assert sum(s.completed for s in ops.values()) > 10, report  # the workload did work
    assert sum(s.interrupted for s in ops.values()) >= 1, report  # and the kills hit some
    assert all(result.findings.runs[c] >= 6 for c in ("verify", "acknowledged kept")), report
    assert result.findings.runs["publishes delivered"] == 1, report
    assert result.summary().startswith("kills=5 corrupt=0 lost=0 duplicated=0 "), report


def test_the_kill_schedule_is_fixed_by_the_seed() -> None:
    assert kill_schedule(20, 7) == kill_schedule(20, 7)
    assert kill_schedule(20, 7) != kill_schedule(20, 8)
    plans = kill_schedule(200, 0)
    assert 5 <= sum(p.at_startup for p in plans) <= 40
    assert all(0.05 <= p.delay_s <= 4.0 for p in plans)


_OTHER_WRITER = """
from dag.sqlite_db import open_sqlite
conn = open_sqlite({db!r})
conn.execute("INSERT INTO t VALUES (2)")
conn.commit()
conn.close()
"""


def test_a_second_connection_in_one_process_keeps_its_writes_safe_from_another_process(
    tmp_path: Path,
) -> None:
    """The daemon opens index.db several times (index, step cache, market, ...); ``artdag add``
    beside it opens, writes and closes the same file. Opening a connection must not drop the
    daemon's SQLite (POSIX) locks on the file — closing any descriptor of a file drops them
    all — or the CLI's last close checkpoints and deletes the WAL the daemon is still writing
    to, and the daemon's later commits vanish (the crash campaign lost acknowledged uploads
    this way)."""
    db = str(tmp_path / "index.db")
    daemon = open_sqlite(db)
    daemon.execute("CREATE TABLE t (x)")
    daemon.execute("INSERT INTO t VALUES (1)")
    daemon.commit()
    second = open_sqlite(db)  # another service of the same process
    code = _OTHER_WRITER.format(db=db)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=ROOT)
    daemon.execute("INSERT INTO t VALUES (3)")
    daemon.commit()
    assert os.path.exists(db + "-wal")
    with sqlite3.connect(db) as fresh:
        assert sorted(r[0] for r in fresh.execute("SELECT x FROM t")) == [1, 2, 3]
    second.close()
    daemon.close()


@pytest.mark.daemon
@pytest.mark.slow
def test_a_publish_killed_between_storing_and_queueing_is_delivered_when_repeated(
    tmp_path: Path,
) -> None:
    """The Create is stored (activitypub.db) before its deliveries are queued (deliveries.db):
    a daemon killed in between used to leave a work that ``publish`` calls already published
    and that no follower ever receives. Held here deterministically: the queue's database is
    locked while the publish runs, and the daemon is killed once the Create is stored."""
    daemon = campaign_daemon(tmp_path / "home", CampaignSettings(tmp_path, p2p=False)).start()
    try:
        with remote_server(("anna",)) as remote:
            actor = daemon.api_url + "/users/alice"
            follow = remote.follow(actor, "anna")
            assert (
                remote.signed_post(daemon.api_url + "/inbox", follow, name="anna").status_code
                == 202
            )
            wait_until(lambda: remote.of_type("Accept"), 20, "the Accept")
            cid = daemon.add_bytes(os.urandom(2000), "work.bin")["cid"]

            def stored() -> bool:
                with sqlite3.connect(
                    f"file:{daemon.home / 'activitypub.db'}?mode=ro", uri=True
                ) as db:
                    query = "SELECT 1 FROM activities WHERE cid = ? AND type = 'Create'"
                    return db.execute(query, (cid,)).fetchone() is not None

            def publish() -> None:
                with contextlib.suppress(httpx.HTTPError):  # killed while it waits for the queue
                    daemon.api("POST", "/api/v1/activitypub/publish", json={"cid": cid})

            blocker = sqlite3.connect(daemon.home / "deliveries.db", timeout=5)
            blocker.execute("BEGIN EXCLUSIVE")
            publishing = threading.Thread(target=publish)
            try:
                publishing.start()
                wait_until(stored, 20, "the Create stored")
                daemon.kill()
            finally:
                blocker.rollback()
                blocker.close()
                publishing.join(60)
            daemon.restart()
            again = daemon.api("POST", "/api/v1/activitypub/publish", json={"cid": cid}).json()
            assert again["already_published"], again
            wait_until(
                lambda: remote.handled("Create").get(again["activity"]), 20, "the Create delivered"
            )
    finally:
        daemon.stop()


@pytest.mark.daemon
@pytest.mark.slow
def test_an_add_killed_before_its_repo_append_is_chained_when_repeated(tmp_path: Path) -> None:
    """Node._sign_asset indexes the signed record, then appends it to our repo chain. Killed
    in between (held here by taking the repo's flock, as an ``artdag add`` beside the daemon
    would), the add repeated afterwards found the index row and answered 'existed': the record
    was never appended, so no peer learnt of the work (the crash campaign's ``unchained``)."""
    daemon = campaign_daemon(tmp_path / "home", CampaignSettings(tmp_path, p2p=False)).start()
    data = os.urandom(3000)
    try:
        fd = os.open(daemon.home / "p2p.db.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        adding = threading.Thread(target=_quiet_add, args=(daemon, data))
        try:
            adding.start()
            wait_until(lambda: _indexed(daemon.home, "work.bin"), 20, "the record indexed")
            daemon.kill()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            adding.join(60)
        daemon.restart()
        again = daemon.add_bytes(data, "work.bin")
        assert again["existed"]
        with sqlite3.connect(f"file:{daemon.home / 'p2p.db'}?mode=ro", uri=True) as db:
            chained = {r[0] for r in db.execute("SELECT record FROM repo_records")}
        assert again["record"] in chained
    finally:
        daemon.stop()


def _quiet_add(daemon: DaemonProcess, data: bytes) -> None:
    with contextlib.suppress(httpx.HTTPError):  # killed while it waits for the repo
        daemon.api("POST", "/api/v1/assets", params={"name": "work.bin"}, content=data)


def _indexed(home: Path, name: str) -> bool:
    with sqlite3.connect(f"file:{home / 'index.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT 1 FROM assets WHERE name = ?", (name,)).fetchone() is not None


@pytest.mark.cli
@pytest.mark.ffmpeg
def test_verify_is_clean_after_a_render(tmp_path: Path) -> None:
    """Found by the crash campaign with no kill involved: one ``artdag render`` and ``artdag
    verify`` exited 1, naming the render's pinned receipt and provenance records as incomplete
    for lack of the block their ``cache_id`` links name."""
    from tests.harness.cli_helpers import Home
    from tests.harness.crash_inputs import RECIPE
    from tests.harness.media import make_video

    home = Home(tmp_path / "home")
    clip = home.last_line(
        "add", str(make_video(tmp_path / "c.mp4", 1, "160x90", 10, container="mp4"))
    )
    recipe = tmp_path / "speed.yaml"
    recipe.write_text(RECIPE)
    home.run("render", str(recipe), "--input", f"clip={clip}")
    checked = home.run("verify", check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


@pytest.mark.cli
def test_a_car_imported_again_during_a_collection_stays_whole(tmp_path: Path) -> None:
    """A CAR imported, unpinned and left for a while (its blocks older than the grace period)
    is imported again by ``artdag import`` while a collection is sweeping (the daemon's, here
    the same code in this process, paused before its first batch). The import found every
    block present and only pinned the root; the collection, which marked before that pin and
    saw old blocks, deleted them: the pinned CAR was left without its blocks. A re-put
    refreshes their mtime (``FlatFsBlockstore.put``), keeping them young."""
    import random

    from dag import FlatFsBlockstore
    from tests.harness.cli_helpers import Home
    from tests.harness.crash_inputs import _make_cars

    home = Home(tmp_path / "home")
    home.run("init")
    car = trio.run(_make_cars, tmp_path, random.Random(1), 1)[0]
    assert home.last_line("import", str(car.path)) == car.root
    home.run("pin", "rm", car.root)
    old = 1_000_000_000.0  # 2001: far older than any grace period
    for block in (home.path / "store" / "blocks").rglob("*.data"):
        os.utime(block, (old, old))

    async def collect_while_importing() -> None:
        store = FlatFsBlockstore(home.path / "store")
        imported: list[str] = []

        def import_again(batch: int) -> None:
            if not imported:
                imported.append(home.last_line("import", str(car.path)))

        store._before_batch = import_again
        try:
            await store.collect_garbage(grace_s=60.0)
        finally:
            await store.aclose()
        assert imported == [car.root]

    trio.run(collect_while_importing)
    checked = home.run("verify", check=False)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


@pytest.mark.cli
def test_an_add_that_died_between_its_two_index_writes_signs_no_second_record(
    tmp_path: Path,
) -> None:
    """Seen once in 40 kills of the campaign: a file with two signed asset records of ours in
    the index (one without an asset row, never chained). ``Node._index_asset`` writes the
    ``records`` row, then the ``assets`` row, each its own transaction; an add that died in
    between (here the second write is made to fail, as a SIGKILL there would leave it) found
    no asset row when repeated, and signed and indexed a second record for the same bytes."""
    from tests.harness.cli_helpers import Home

    home = Home(tmp_path / "home")
    home.run("assets")  # creates the index
    source = tmp_path / "work.bin"
    source.write_bytes(os.urandom(5000))
    with sqlite3.connect(home.path / "index.db") as db:
        db.execute(
            "CREATE TRIGGER crash BEFORE INSERT ON assets BEGIN SELECT RAISE(ABORT, 'crash'); END"
        )
    assert home.run("add", str(source), check=False).returncode != 0
    with sqlite3.connect(home.path / "index.db") as db:
        db.execute("DROP TRIGGER crash")
    root = home.last_line("add", str(source))
    with sqlite3.connect(home.path / "index.db") as db:
        records = db.execute(
            "SELECT cid FROM records WHERE type = 'asset' AND subject = ?", (root,)
        ).fetchall()
    assert len(records) == 1, records
