"""The IPFS Pinning Service API of a real ``artdag daemon`` (daemon/api_pinning.py and
daemon/pinning_service.py): two daemon processes on 127.0.0.1. Daemon B holds a multi-block
file; daemon A is asked over ``POST /pins`` to pin it with B's multiaddr as origin, fetches
every block over py-libp2p (bitswap) and pins the root with the reason ``remote``. Around that:
tokens (401), malformed requests (400), list filters, get/replace/delete and the pins they
leave, a CID nobody has (``failed`` after the configured timeout), the CLI, and a request
interrupted by a restart that resumes."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dag
from daemon.core.pinning_api.tokens import add_token
from tests.harness.daemons import DaemonProcess, wait_until

CHUNK = 64 * 1024
SIZE = 3 * 1024 * 1024 + 4321  # 49 leaves of 64 KiB and one root
FETCH_TIMEOUT_S = 6  # A's [pinning] fetch_timeout_seconds
NOBODY_HAS = dag.cid_to_str(dag.Block.encode(b"no daemon holds these bytes", codec="raw").cid)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    root = tmp_path_factory.mktemp("pinning")
    (root / "a").mkdir()
    (root / "a" / "config.toml").write_text(
        f"[pinning]\nfetch_timeout_seconds = {FETCH_TIMEOUT_S}\nmax_concurrent = 2\n"
        "allow_private_origins = true\n"  # B's multiaddr is on 127.0.0.1
    )
    # no bootstrap: A knows B only through the origins of a pin request
    a = DaemonProcess(root / "a").start()
    b = DaemonProcess(root / "b", ARTDAG_CHUNK_SIZE=str(CHUNK))
    try:
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def client(daemon: DaemonProcess, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Client(base_url=daemon.api_url, headers=headers, timeout=30)


def new_token(daemon: DaemonProcess, name: str) -> httpx.Client:
    return client(daemon, add_token(daemon.home / "pinning-tokens", name))


def settle(pins: httpx.Client, requestid: str, timeout: float = 60) -> dict[str, Any]:
    """Poll ``GET /pins/{id}`` until pinned or failed; the statuses seen are checked."""
    seen: list[str] = []

    def done() -> bool:
        response = pins.get(f"/pins/{requestid}")
        assert response.status_code == 200, response.text
        seen.append(response.json()["status"])
        return seen[-1] in ("pinned", "failed")

    wait_until(done, timeout, f"pin request {requestid} to settle", interval=0.1)
    assert set(seen) <= {"queued", "pinning", "pinned", "failed"}
    return pins.get(f"/pins/{requestid}").json()


async def reasons_in_store(daemon: DaemonProcess) -> dict[str, tuple[str, ...]]:
    """The daemon's pins as its embedded store records them (opened beside the daemon)."""
    store = dag.FlatFsBlockstore(daemon.home / "store")
    try:
        return {dag.cid_to_str(p.cid): p.reasons for p in await store.pins()}
    finally:
        await store.aclose()


def local_asset(daemon: DaemonProcess, text: str) -> str:
    return daemon.add_bytes(text.encode(), f"{text}.txt")["cid"]


# -- the main path --------------------------------------------------------------------------------


async def test_a_dag_on_another_daemon_is_fetched_from_the_origin_and_pinned(
    pair: tuple[DaemonProcess, DaemonProcess], tmp_path: Path
) -> None:
    a, b = pair
    data = os.urandom(SIZE)
    cid = b.add_bytes(data, "far.bin")["cid"]
    # the same bytes cut the same way here: the list of every block of the DAG
    mine = dag.FlatFsBlockstore(tmp_path / "mine")
    imported = await dag.import_file(mine, io.BytesIO(data), dag.ImportParams(chunk_size=CHUNK))
    assert dag.cid_to_str(imported.cid) == cid
    every_block = [c async for c, _ in dag.walk_dag(mine, [imported.cid])]
    assert len(every_block) > 40
    await mine.aclose()

    with new_token(a, "main-path") as pins:
        response = pins.post("/pins", json={"cid": cid, "name": "far.bin", "origins": [b.p2p_addr]})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "queued"
        assert body["pin"] == {"cid": cid, "name": "far.bin", "origins": [b.p2p_addr]}
        assert body["created"].endswith("Z") and len(body["created"]) == 24
        assert body["delegates"] and all(f"/p2p/{a.peer_id}" in d for d in body["delegates"])
        final = settle(pins, body["requestid"])
        assert final["status"] == "pinned", final
        assert final["info"]["blocks"] == str(len(every_block))
        assert int(final["info"]["dag_size"]) > SIZE  # the leaves and the root node

    store = dag.FlatFsBlockstore(a.home / "store")
    try:
        missing = [c for c in every_block if not await store.has(c)]
    finally:
        await store.aclose()
    assert missing == []
    assert "remote" in (await reasons_in_store(a))[cid]


def test_a_cid_nobody_has_fails_after_the_configured_timeout(
    pair: tuple[DaemonProcess, DaemonProcess],
) -> None:
    a, _ = pair
    with new_token(a, "nobody") as pins:
        response = pins.post("/pins", json={"cid": NOBODY_HAS, "origins": ["not a multiaddr"]})
        assert response.status_code == 202
        final = settle(pins, response.json()["requestid"], timeout=FETCH_TIMEOUT_S + 30)
        assert final["status"] == "failed"
        assert f"within {FETCH_TIMEOUT_S} s" in final["info"]["status_details"]
        listed = pins.get("/pins", params={"status": "failed"}).json()
        assert [r["requestid"] for r in listed["results"]] == [final["requestid"]]


# -- tokens and malformed requests ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_or_bad_tokens_get_401_with_the_failure_body(
    pair: tuple[DaemonProcess, DaemonProcess], headers: dict[str, str]
) -> None:
    a, _ = pair
    api_token = {"Authorization": f"Bearer {a.token}"}  # the JSON API's token is not a pin token
    for extra in (headers, api_token):
        with httpx.Client(base_url=a.api_url, headers=extra, timeout=30) as anon:
            for method, path in [
                ("GET", "/pins"),
                ("POST", "/pins"),
                ("GET", "/pins/x"),
                ("POST", "/pins/x"),
                ("DELETE", "/pins/x"),
            ]:
                response = anon.request(method, path, json={"cid": NOBODY_HAS})
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"]["reason"] == "UNAUTHORIZED"
                assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working_at_once(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, _ = pair
    token = a.cli("pinning", "token-add", "short-lived")
    lines = token.stdout.decode().split()
    assert "ipfs pin remote service add artdag" in token.stderr.decode()
    with client(a, lines[0]) as pins:
        assert pins.get("/pins").status_code == 200
        assert "short-lived" in a.cli("pinning", "token-ls").stdout.decode()
        a.cli("pinning", "token-rm", "short-lived")
        assert pins.get("/pins").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "problem"),
    [
        ("POST", "/pins", {"json": {"cid": "not-a-cid"}}, "not a valid CID"),
        ("POST", "/pins", {"json": {"name": "no cid"}}, "cid is required"),
        ("POST", "/pins", {"json": {"cid": NOBODY_HAS, "origins": "/ip4/x"}}, "origins"),
        ("POST", "/pins", {"json": {"cid": NOBODY_HAS, "name": "n" * 256}}, "at most 255"),
        ("POST", "/pins", {"json": {"cid": NOBODY_HAS, "meta": {"k": 1}}}, "string"),
        ("POST", "/pins", {"content": b"{not json"}, "not JSON"),
        ("POST", "/pins", {"content": b"x" * 300_000}, "over"),
        ("GET", "/pins", {"params": {"limit": "0"}}, "limit"),
        ("GET", "/pins", {"params": {"limit": "many"}}, "limit"),
        ("GET", "/pins", {"params": {"status": "done"}}, "status"),
        ("GET", "/pins", {"params": {"match": "fuzzy", "name": "x"}}, "match"),
        ("GET", "/pins", {"params": {"before": "last week"}}, "before"),
        ("GET", "/pins", {"params": {"cid": "nope"}}, "cid"),
        ("GET", "/pins", {"params": {"meta": "[1]"}}, "meta"),
    ],
)
def test_malformed_requests_get_400_with_a_reason(
    pair: tuple[DaemonProcess, DaemonProcess],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    problem: str,
) -> None:
    a, _ = pair
    with new_token(a, f"bad-{secrets.token_hex(6)}") as pins:
        response = pins.request(method, path, **kwargs)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["reason"] == "BAD_REQUEST"
        assert problem in error["details"]
        assert pins.get("/pins", params={"status": "queued,pinning,pinned,failed"}).json() == {
            "count": 0,
            "results": [],
        }


# -- listing, get, replace, delete ----------------------------------------------------------------


def test_list_filters(pair: tuple[DaemonProcess, DaemonProcess]) -> None:
    a, _ = pair
    cids = [local_asset(a, f"list {i}") for i in range(3)]
    names = ["Alpha one", "alpha two", "beta"]
    with new_token(a, "lister") as pins:
        ids = []
        for cid, name, app in zip(cids, names, ["x", "y", "x"], strict=True):
            response = pins.post("/pins", json={"cid": cid, "name": name, "meta": {"app": app}})
            ids.append(response.json()["requestid"])
        for rid in ids:
            assert settle(pins, rid)["status"] == "pinned"  # blocks already local: quick
        failed = pins.post("/pins", json={"cid": NOBODY_HAS, "name": "alpha lost"})
        failed_id = failed.json()["requestid"]

        def listed(**params: str) -> list[str]:
            response = pins.get("/pins", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["count"] >= len(body["results"])
            return [r["requestid"] for r in body["results"]]

        newest_first = ids[::-1]
        assert listed() == newest_first  # pinned only by default
        assert failed_id in listed(status="queued,pinning,failed")
        assert listed(cid=f"{cids[0]},{cids[2]}") == [ids[2], ids[0]]
        assert listed(name="Alpha one") == [ids[0]]
        assert listed(name="alpha one") == []
        assert listed(name="ALPHA ONE", match="iexact") == [ids[0]]
        assert listed(name="lpha", match="partial") == [ids[1], ids[0]]
        assert listed(name="ALPHA", match="partial") == []
        assert listed(name="ALPHA", match="ipartial") == [ids[1], ids[0]]
        assert listed(meta='{"app": "x"}') == [ids[2], ids[0]]
        limited = pins.get("/pins", params={"limit": "1"}).json()
        assert limited["count"] == 3 and [r["requestid"] for r in limited["results"]] == [ids[2]]
        middle = pins.get(f"/pins/{ids[1]}").json()["created"]
        assert listed(before=middle) == [ids[0]]
        assert listed(after=middle) == [ids[2]]
        # paging as the spec describes: before = the oldest created of the last batch
        page, seen = {"limit": "2"}, []
        while batch := pins.get("/pins", params=page).json()["results"]:
            seen += [r["requestid"] for r in batch]
            page = {"limit": "2", "before": batch[-1]["created"]}
        assert seen == newest_first
        # the CLI reads the same requests without asking the daemon
        out = a.cli("pinning", "ls", "--status", "pinned", "--json").stdout.decode()
        assert all(rid in out for rid in ids) and failed_id not in out
    with new_token(a, "someone-else") as other:
        assert other.get("/pins").json() == {"count": 0, "results": []}
        assert other.get(f"/pins/{ids[0]}").status_code == 404
        assert other.delete(f"/pins/{ids[0]}").status_code == 404


async def test_get_replace_delete_and_the_pins_they_leave(
    pair: tuple[DaemonProcess, DaemonProcess],
) -> None:
    a, _ = pair
    x, y = local_asset(a, "replace x"), local_asset(a, "replace y")
    with new_token(a, "replacer") as pins:
        for method in ("GET", "DELETE"):
            response = pins.request(method, "/pins/no-such-request")
            assert response.status_code == 404
            assert response.json()["error"]["reason"] == "NOT_FOUND"
        assert pins.post("/pins/no-such-request", json={"cid": x}).status_code == 404

        first = pins.post("/pins", json={"cid": x, "name": "x"}).json()
        assert settle(pins, first["requestid"])["status"] == "pinned"
        assert "remote" in (await reasons_in_store(a))[x]

        response = pins.post(f"/pins/{first['requestid']}", json={"cid": y, "name": "y"})
        assert response.status_code == 202
        second = response.json()
        assert second["requestid"] != first["requestid"] and second["pin"]["cid"] == y
        assert pins.get(f"/pins/{first['requestid']}").status_code == 404
        assert settle(pins, second["requestid"])["status"] == "pinned"
        reasons = await reasons_in_store(a)
        assert "remote" in reasons[y] and "remote" not in reasons[x]
        assert "local" in reasons[x]  # the asset's own pin is not the API's to drop

        # two requests for one CID: the pin stays until the last one goes
        again = pins.post("/pins", json={"cid": y}).json()
        assert settle(pins, again["requestid"])["status"] == "pinned"
        assert pins.delete(f"/pins/{second['requestid']}").status_code == 202
        assert pins.get(f"/pins/{second['requestid']}").status_code == 404
        assert "remote" in (await reasons_in_store(a))[y]
        response = pins.delete(f"/pins/{again['requestid']}")
        assert response.status_code == 202 and response.content == b""
        assert "remote" not in (await reasons_in_store(a))[y]


@pytest.mark.slow
async def test_a_request_interrupted_by_a_restart_resumes(
    pair: tuple[DaemonProcess, DaemonProcess], tmp_path: Path
) -> None:
    """A is asked for a DAG nobody has yet and stopped at once; B gets the bytes meanwhile; A,
    restarted, takes the request up again and pins it from the origin. (Runs last: A's ports
    change with the restart.)"""
    a, b = pair
    data = os.urandom(200_000)
    mine = dag.FlatFsBlockstore(tmp_path / "mine")
    result = await dag.import_file(mine, io.BytesIO(data), dag.ImportParams(chunk_size=CHUNK))
    await mine.aclose()
    cid = dag.cid_to_str(result.cid)
    with new_token(a, "restarter") as pins:
        token = pins.headers["Authorization"].split()[1]
        body = pins.post("/pins", json={"cid": cid, "origins": [b.p2p_addr]}).json()
    a.stop()
    assert b.add_bytes(data, "late.bin")["cid"] == cid
    a.restart()
    with client(a, token) as pins:
        final = settle(pins, body["requestid"])
    assert final["status"] == "pinned", final
    assert "remote" in (await reasons_in_store(a))[cid]
