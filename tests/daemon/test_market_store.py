"""The market ledger: :class:`daemon.core.market.store.MarketStore` on a real SQLite file, its JSON
routes served by the real hypercorn server on 127.0.0.1 (in-process), and the ``jobs`` /
``volunteers`` commands, answered from the ledger in-process without a daemon and through that
server when ``daemon.json`` names it."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import click
import httpx
import pytest
import trio
from click.testing import CliRunner
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from daemon.cli.market import jobs as jobs_command
from daemon.cli.market import volunteers as volunteers_command
from daemon.config import Config, load_config
from daemon.core.market.store import (
    JobRow,
    MarketStore,
    MarketStoreError,
    ResultRow,
    VerdictRow,
    VolunteerRow,
)
from daemon.home import read_token
from daemon.http.app import create_app
from daemon.nodeapi.client import write_daemon_file
from daemon.services import Services, open_services

DID_A = "did:key:z6MkvolunteerAAAAAAAA"
DID_B = "did:key:z6MkvolunteerBBBBBBBB"
DID_R = "did:key:z6MkrequesterRRRRRRRR"


def job(job_id: str, role: str = "requester", created: float = 100.0, **kw) -> JobRow:
    base = {
        "step": "seg-1",
        "operation": "transcode",
        "cache_id": f"cache-{job_id}",
        "requester": DID_R,
        "replicas": 3,
        "status": "open" if role == "requester" else "offered",
        "created": created,
        "updated": created,
        "deadline": created + 600,
    }
    return JobRow(job_id=job_id, role=role, **(base | kw))


def result(job_id: str, volunteer: str, slot: int, verdict: str = "pending") -> ResultRow:
    return ResultRow(
        job_id=job_id,
        volunteer=volunteer,
        slot=slot,
        receipt=f"bafyreceipt{slot}",
        output="bafyoutput",
        content_key="key-1",
        duration_ms=2000,
        render_ms=1500,
        verdict=verdict,
        at=200.0 + slot,
    )


@pytest.fixture
def store(tmp_path):
    s = MarketStore(tmp_path / "market.sqlite")
    yield s
    s.close()


def test_job_round_trip_update_and_reopen(tmp_path):
    path = tmp_path / "market.sqlite"
    store = MarketStore(path)
    row = job("j1", volunteers=[DID_A], timings={"gossip": 0.25}, detail="x", render_ms=12)
    store.put_job(row)
    store.put_job(job("j1", role="volunteer", status="rendering"))
    assert store.job("j1", "requester") == row
    assert store.job("j1", "volunteer").status == "rendering"
    assert store.job("j1", "nobody-role") is None

    store.update_job("j1", "requester", status="done", output="bafyout", timings={"lease": 1.5})
    assert store.add_job_volunteer("j1", "requester", DID_B) == [DID_A, DID_B]
    assert store.add_job_volunteer("j1", "requester", DID_B) == [DID_A, DID_B]
    store.add_job_timing("j1", "requester", "lease", 0.5)
    updated = store.job("j1", "requester")
    assert updated.status == "done" and updated.output == "bafyout"
    assert updated.timings == {"lease": 2.0}
    assert updated.volunteers == [DID_A, DID_B]
    assert updated.updated > row.updated  # set to now by update_job
    store.close()

    again = MarketStore(path)
    try:
        assert again.job("j1", "requester") == updated
        assert again.job("j1", "volunteer").status == "rendering"
    finally:
        again.close()


def test_bad_rows_are_refused_with_a_clear_error(store):
    store.put_job(job("j1"))
    with pytest.raises(MarketStoreError, match=r"unknown job field.*colour"):
        store.update_job("j1", "requester", colour="red")
    with pytest.raises(MarketStoreError, match=r"unknown job field.*job_id"):
        store.update_job("j1", "requester", job_id="j2")
    with pytest.raises(MarketStoreError, match="requester job status 'rendering'"):
        store.update_job("j1", "requester", status="rendering")
    with pytest.raises(MarketStoreError, match="no requester job j2"):
        store.update_job("j2", "requester", status="done")
    with pytest.raises(MarketStoreError, match="role 'boss'"):
        store.put_job(job("j3", role="boss"))
    with pytest.raises(MarketStoreError, match="verdict 'maybe'"):
        store.put_result(result("j1", DID_A, 0, verdict="maybe"))
    with pytest.raises(MarketStoreError, match="no result"):
        store.set_verdict("j1", DID_A, 0, "accepted")
    with pytest.raises(MarketStoreError, match="rejected"):
        store.credit(DID_A, rejected=-1)
    assert isinstance(MarketStoreError("x"), ValueError)  # the CLI reports it as one line
    # nothing stored was touched by the refused calls
    assert store.job("j1", "requester") == job("j1")
    assert store.volunteer(DID_A) is None


def test_jobs_newest_first_filtered_and_limited(store):
    for i, created in enumerate([300.0, 100.0, 200.0, 400.0]):
        store.put_job(job(f"r{i}", created=created))
    store.put_job(job("v0", role="volunteer", created=250.0))
    assert [j.job_id for j in store.jobs()] == ["r3", "r0", "v0", "r2", "r1"]
    assert [j.job_id for j in store.jobs("requester", limit=2)] == ["r3", "r0"]
    assert [j.job_id for j in store.jobs("volunteer")] == ["v0"]
    with pytest.raises(MarketStoreError):
        store.jobs("boss")


def test_results_and_verdicts(store):
    store.put_result(result("j1", DID_B, 1))
    store.put_result(result("j1", DID_A, 0))
    store.put_result(result("j2", DID_A, 0))
    store.set_verdict("j1", DID_B, 1, "rejected")
    rows = store.results("j1")
    assert [(r.volunteer, r.slot, r.verdict) for r in rows] == [
        (DID_A, 0, "pending"),
        (DID_B, 1, "rejected"),
    ]
    assert rows[0] == result("j1", DID_A, 0)

    first = VerdictRow("c1", "bafyout1", "key-1", "media", 2000, ["r1", "r2"], DID_R, 10.0)
    second = VerdictRow("c1", "bafyout2", "key-2", "media", None, ["r3"], DID_A, 20.0)
    assert store.put_verdict(first) is True
    assert store.put_verdict(second) is False  # the first announcement is kept
    assert store.verdict("c1") == first
    assert store.verdict("c2") is None
    store.forget_verdict("c1")
    assert store.put_verdict(second) is True
    assert store.verdict("c1") == second


async def test_credit_increments_are_atomic_across_threads(store):
    threads, each = 8, 50

    def work(did: str) -> None:
        for _ in range(each):
            store.credit(did, accepted=1, rendered_ms=10, leases=1, now=5.0)

    async with trio.open_nursery() as nursery:
        for i in range(threads):
            nursery.start_soon(trio.to_thread.run_sync, work, DID_A if i % 2 else DID_B)
    for did in (DID_A, DID_B):
        row = store.volunteer(did)
        n = threads // 2 * each
        assert (row.accepted, row.rendered_ms, row.leases, row.rejected) == (n, 10 * n, n, 0)
        assert row.last_seen == 5.0


def test_credit_returns_the_new_row_and_volunteers_rank_by_reputation(store):
    row = store.credit(DID_A, accepted=3, rendered_ms=4000, now=10.0)
    assert row == VolunteerRow(DID_A, rendered_ms=4000, accepted=3, last_seen=10.0)
    assert store.credit(DID_A, expired=1, now=5.0).last_seen == 10.0  # never goes back
    store.credit(DID_B, accepted=5, rejected=2, now=11.0)
    store.credit("did:key:z6Mkstranger", leases=1)
    a, b = store.volunteer(DID_A), store.volunteer(DID_B)
    assert a.reputation > 0.5 > b.reputation
    assert a.trusted(3) and not a.trusted(4) and not a.avoided
    assert b.avoided and not b.trusted(1)
    assert [v.did for v in store.volunteers()] == [DID_A, "did:key:z6Mkstranger", DID_B]
    assert a.to_json(3) == {
        "did": DID_A,
        "rendered_ms": 4000,
        "accepted": 3,
        "rejected": 0,
        "expired": 1,
        "leases": 0,
        "last_seen": 10.0,
        "reputation": a.reputation,
        "avoided": False,
        "trusted": True,
    }


def test_schema_is_shared_safely_with_other_tables(tmp_path):
    """The store may live in the node's index database: other tables are left alone."""
    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("create table assets (cid text primary key)")
        conn.execute("insert into assets values ('bafyx')")
    store = MarketStore(path)
    store.put_job(job("j1"))
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("select cid from assets").fetchall() == [("bafyx",)]


# -- the JSON routes and the CLI, over real HTTP on 127.0.0.1 -----------------------------------


@asynccontextmanager
async def serving(config: Config) -> AsyncIterator[tuple[httpx.AsyncClient, Services, str]]:
    """The real app over the node's services, served on 127.0.0.1 by hypercorn."""
    async with open_services(config) as services, trio.open_nursery() as nursery:
        token = read_token(config)
        app = create_app(services, token)
        hconfig = HypercornConfig()
        hconfig.bind = ["127.0.0.1:0"]
        hconfig.accesslog = None
        urls = await nursery.start(serve, app, hconfig)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, services, urls[0]
        nursery.cancel_scope.cancel()


@pytest.fixture
async def market_api(tmp_path):
    config = load_config(tmp_path / "home", environ={})
    async with serving(config) as (client, services, url):
        yield client, services, config, url


def fill(store: MarketStore) -> None:
    store.put_job(job("job-requested-0001", volunteers=[DID_A, DID_B], render_ms=2500))
    store.put_job(job("job-volunteered-01", role="volunteer", created=150.0))
    store.put_result(result("job-requested-0001", DID_A, 0, "accepted"))
    store.put_result(result("job-requested-0001", DID_B, 1, "rejected"))
    store.put_verdict(
        VerdictRow("cache-job-requested-0001", "bafyout", "key-1", "media", 2000, [], DID_R, 1.0)
    )
    store.credit(DID_A, accepted=4, rendered_ms=6000)
    store.credit(DID_B, accepted=1, rejected=2, rendered_ms=1500)


async def test_market_routes(market_api, tmp_path):
    client, services, _, _ = market_api
    no_p2p = load_config(tmp_path / "no-p2p", environ={"ARTDAG_P2P": "false"})
    async with serving(no_p2p) as (off_client, _, _):
        off = await off_client.get("/api/v1/jobs")
        assert off.status_code == 404
        assert off.json()["error"] == "the market is not running on this node"
        assert (await off_client.get("/api/v1/volunteers")).status_code == 404

    fill(await services.market_store())
    listed = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert [(j["job_id"], j["role"]) for j in listed] == [
        ("job-volunteered-01", "volunteer"),
        ("job-requested-0001", "requester"),
    ]
    assert listed[1]["volunteers"] == [DID_A, DID_B]
    only = await client.get("/api/v1/jobs", params={"role": "requester", "limit": 5})
    assert [j["job_id"] for j in only.json()["jobs"]] == ["job-requested-0001"]
    for bad in ({"role": "boss"}, {"limit": "x"}, {"limit": 0}):
        refused = await client.get("/api/v1/jobs", params=bad)
        assert refused.status_code == 400 and refused.json()["error"]

    detail = (await client.get("/api/v1/jobs/job-requested-0001")).json()
    assert [j["role"] for j in detail["jobs"]] == ["requester"]
    assert [(r["volunteer"], r["verdict"]) for r in detail["results"]] == [
        (DID_A, "accepted"),
        (DID_B, "rejected"),
    ]
    assert detail["verdict"]["output"] == "bafyout"
    missing = await client.get("/api/v1/jobs/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]

    body = (await client.get("/api/v1/volunteers")).json()
    volunteers = body["volunteers"]
    assert [v["did"] for v in volunteers] == [DID_A, DID_B]
    assert volunteers[0]["trusted"] is (body["trust_after"] <= 4)
    assert volunteers[1]["avoided"] is True and volunteers[1]["trusted"] is False
    assert 0 < volunteers[1]["reputation"] < 0.5 < volunteers[0]["reputation"]
    no_token = await client.get("/api/v1/jobs", headers={"Authorization": ""})
    assert no_token.status_code == 401


async def test_jobs_and_volunteers_commands(market_api, tmp_path):
    """The commands on a click group of their own, first without a daemon (they read the
    ledger in-process), then against the in-process server found through daemon.json like a
    real daemon: the same output both ways."""
    _, services, config, url = market_api
    fill(await services.market_store())

    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = {"config": config}

    cli.add_command(jobs_command)
    cli.add_command(volunteers_command)
    runner = CliRunner()

    def run(*args: str) -> click.testing.Result:
        return runner.invoke(cli, list(args), env={"COLUMNS": "200", "ARTDAG_API": "auto"})

    async def check() -> dict[str, Any]:
        jobs = await trio.to_thread.run_sync(run, "jobs")
        assert jobs.exit_code == 0, jobs.output
        assert "job-requeste" in jobs.output and "job-requested-0001" not in jobs.output
        assert DID_A[-8:] in jobs.output and "2.5" in jobs.output

        as_json = await trio.to_thread.run_sync(run, "jobs", "--role", "volunteer", "--json")
        assert [j["job_id"] for j in json.loads(as_json.output)] == ["job-volunteered-01"]

        vols = await trio.to_thread.run_sync(run, "volunteers")
        assert vols.exit_code == 0, vols.output
        lines = vols.output.splitlines()
        assert any(DID_B[-8:] in line and "avoided" in line for line in lines)
        assert lines[-1] == "total: 7.5 s rendered, 5 accepted, 2 rejected"
        return {"jobs": jobs.output, "json": as_json.output, "volunteers": vols.output}

    without_daemon = await check()
    write_daemon_file(config, {"api": url})
    try:
        assert await check() == without_daemon
    finally:
        os.unlink(config.home / "daemon.json")
