"""Issue 16, gateway and records: a peer's record cannot make the gateway serve script on the
UI's origin, hostile gateway headers answer 4xx (never 500), and adding the same bytes is
idempotent per signer, even under concurrent uploads.

Everything runs the real parts: the real app served by hypercorn on 127.0.0.1 over a real node
(flat-file blockstore, SQLite index), records synced through the same ``RepoSync`` and
``Node.index_remote_record`` a daemon wires together, and real ``artdag daemon`` processes.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import dag
from daemon.config import load_config
from daemon.core.node import Node
from daemon.home import read_token
from daemon.runtime import serve_http
from daemon.services import open_services
from dag import Block, record_block
from dag.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, encode_node
from p2p.gossip import make_head_message
from p2p.repo import ChainInvalid, RepoIndex, RepoSync, append
from provenance import Identity, sign_record
from tests.harness.daemons import DaemonProcess
from webui.gateway_ranges import ByteRange, RangeKind, parse_range

HOSTILE_MIME = "text/plain; x=y, text/html"
SCRIPT = b"<script>fetch('/settings').then(r => r.text()).then(alert)</script>\n"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Node]]:
    """The daemon's real app (API, gateway, pages) over a real node, on 127.0.0.1."""
    config = load_config(tmp_path / "home", environ={})
    async with open_services(config) as services, trio.open_nursery() as nursery:
        node = services.node
        token = read_token(config)
        urls = await nursery.start(serve_http, services, token, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, node
        nursery.cancel_scope.cancel()


def _peer_asset(identity: Identity, root: dag.CID, **fields: Any) -> dict[str, Any]:
    """An asset record signed by a peer, built by hand as an attacker would (no builder)."""
    record = {
        "type": "asset",
        "version": 1,
        "root": root,
        "name": "notes.txt",
        "size": len(SCRIPT),
        "created": "2026-12-01T12:00:00Z",
    } | fields
    return sign_record(record, identity)


async def _sync_from_peer(
    node: Node, peer: Identity, peer_store: dag.Blockstore, record: dict[str, Any]
) -> int:
    """``peer`` appends ``record`` to its repo; ``node`` syncs that head as a daemon does
    (RepoSync fetching from the peer, handing each record to ``Node.index_remote_record``).

    The commit is made with ``append`` directly: a peer need not run our code."""
    block = record_block(record)
    commit = append(peer, None, block.cid)
    commit_block = record_block(commit)
    await peer_store.put_many([block, commit_block])

    async def fetch_block(cid: dag.CID) -> bytes:
        return await peer_store.get(cid)

    index = RepoIndex(node.config.p2p_db_path)
    try:
        sync = RepoSync(
            node.store, index, fetch_block, None, node.identity, node.index_remote_record
        )
        return await sync.handle_head(make_head_message(peer, 0, commit_block.cid))
    finally:
        index.db.close()


# -- finding 1: a peer's MIME type ---------------------------------------------------------


async def test_peer_record_with_a_comma_list_mime_is_refused_on_sync(app, tmp_path):
    client, node = app
    mallory = Identity.generate()
    payload = Block.encode(SCRIPT)
    await node.store.put(payload)  # as if the gateway had fetched it from mallory
    mallory_store = dag.FlatFsBlockstore(tmp_path / "mallory")
    record = _peer_asset(mallory, payload.cid, mime=HOSTILE_MIME)
    with pytest.raises(ChainInvalid, match="mime"):
        await _sync_from_peer(node, mallory, mallory_store, record)
    root = dag.cid_to_str(payload.cid)
    assert await node.asset(root) is None
    # the daemon's indexing hook checks the schema itself, whoever calls it
    await node.index_remote_record(record_block(record).cid, record)
    assert await node.asset(root) is None
    assert (await client.get("/api/v1/assets")).json()["assets"] == []
    served = await client.get(f"/ipfs/{root}")
    assert served.status_code == 200 and served.content == SCRIPT
    assert "html" not in served.headers["content-type"]
    assert served.headers["content-security-policy"] == "sandbox"


async def test_a_valid_peer_record_is_still_indexed(app, tmp_path):
    """The strict grammar keeps what real records say (parameters included)."""
    _client, node = app
    alice = Identity.generate()
    payload = Block.encode(b"plain words\n")
    record = _peer_asset(alice, payload.cid, mime="text/plain; charset=utf-8")
    assert await _sync_from_peer(node, alice, dag.FlatFsBlockstore(tmp_path / "a"), record) == 1
    row = await node.asset(payload.cid)
    assert row is not None and row.mime == "text/plain; charset=utf-8" and row.signer == alice.did


async def test_a_hostile_mime_already_in_the_index_is_not_echoed(app):
    """An index written before the fix may hold such a row; the gateway re-checks it."""
    client, node = app
    payload = Block.encode(SCRIPT)
    await node.store.put(payload)
    root = dag.cid_to_str(payload.cid)
    from daemon.core.index import AssetRow

    node.index.put_asset(
        AssetRow(root, "notes", len(SCRIPT), HOSTILE_MIME, [], root, "did:key:z6Mk", "")
    )
    for method in ("GET", "HEAD"):
        served = await client.request(method, f"/ipfs/{root}")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/plain; charset=utf-8")
        assert served.headers["content-security-policy"] == "sandbox"
    content = await client.get(f"/api/v1/assets/{root}/content")
    assert content.headers["content-type"] == "application/octet-stream"
    assert content.headers["content-security-policy"] == "sandbox"


async def test_every_gateway_response_for_user_content_is_sandboxed(app):
    """A harmless type too: the gateway shares the UI's origin, so nothing it serves may run
    script there, whatever its type (the header is the policy, not a guess per type)."""
    client, node = app
    added = await node.add_stream(_chunks(b"just words\n" * 100), name="words.txt")
    cid, record = added.asset.cid, added.asset.record
    text = Block.encode(b"a\n")
    await node.store.put(text)
    listing = PBNode((PBLink(text.cid, 2, "a.txt"),), UnixFSData(UnixFSType.DIRECTORY).encode())
    directory = Block.encode(encode_node(listing), "dag-pb")
    await node.store.put(directory)
    folder = dag.cid_to_str(directory.cid)
    requests: list[tuple[str, str, dict[str, str], int]] = [
        ("GET", f"/ipfs/{cid}", {}, 200),
        ("HEAD", f"/ipfs/{cid}", {}, 200),
        ("GET", f"/ipfs/{cid}", {"Range": "bytes=2-5"}, 206),
        ("GET", f"/ipfs/{cid}", {"Range": "bytes=99999-"}, 416),
        ("GET", f"/ipfs/{cid}", {"If-None-Match": f'"{cid}"'}, 304),
        ("GET", f"/ipfs/{cid}?format=raw", {}, 200),
        ("GET", f"/ipfs/{cid}?format=car", {}, 200),
        ("GET", f"/ipfs/{cid}?format=dag-json", {}, 200),
        ("GET", f"/ipfs/{record}", {}, 200),
        ("GET", f"/ipfs/{record}", {"Accept": "text/html"}, 200),
        ("GET", f"/ipfs/{folder}", {}, 301),
        ("GET", f"/ipfs/{folder}/", {}, 200),
        ("GET", f"/ipfs/{folder}/nothing", {}, 404),
        ("GET", "/ipfs/not-a-cid", {}, 400),
    ]
    for method, path, headers, status in requests:
        response = await client.request(method, path, headers=headers)
        assert response.status_code == status, (method, path, headers)
        assert response.headers.get("content-security-policy") == "sandbox", (path, headers)
        assert response.headers.get("x-content-type-options") == "nosniff", (path, headers)
    plain = await client.get(f"/ipfs/{cid}")
    assert plain.headers["content-type"] == "text/plain"  # the type itself is unchanged
    moved = await client.get(f"/ipfs/{folder}?x=a%20b%0D%0Ac&y=%C3%A9")
    assert moved.status_code == 301
    assert moved.headers["location"] == f"/ipfs/{folder}/?x=a%20b%0D%0Ac&y=%C3%A9"


# -- finding 5: numbers and other headers that used to answer 500 ---------------------------


async def test_huge_numbers_in_gateway_headers_and_paths_are_not_500(app):
    client, node = app
    data = b"0123456789" * 10
    added = await node.add_stream(_chunks(data), name="digits.bin", tags=["t"])
    cid, record = added.asset.cid, added.asset.record
    huge = "9" * 5000
    for header, status, body in (
        (f"bytes={huge}-", 416, b""),
        (f"bytes={huge}-{huge}", 416, b""),
        (f"bytes=5-{huge}", 206, data[5:]),
        (f"bytes=-{huge}", 206, data),
        (f"bytes={'0' * 5000}7-8", 206, data[7:9]),
        (f"bytes=1-{huge}0", 206, data[1:]),
    ):
        response = await client.get(f"/ipfs/{cid}", headers={"Range": header})
        assert response.status_code == status, header[:40]
        if body:
            assert response.content == body
    head = await client.head(f"/ipfs/{cid}", headers={"Range": f"bytes={huge}-"})
    assert head.status_code == 416
    hostile_headers: list[dict[str, str]] = [
        {"If-None-Match": '"' + "x" * 5000 + '", W/"' + huge + '"'},
        {"If-Range": huge, "Range": "bytes=1-2"},
        {"If-Modified-Since": huge},
        {"Accept": f"application/vnd.ipld.car;q={huge}"},
        {"Accept": "application/vnd.ipld.raw;q=nan, text/html;q=1e999"},
        {"Accept": "application/vnd.ipld.car;version=" + huge},
    ]
    for headers in hostile_headers:
        response = await client.get(f"/ipfs/{cid}", headers=headers)
        assert response.status_code < 500, headers
    queries: list[dict[str, str]] = [
        {"format": huge},
        {"filename": f"{huge}\r\nX-Evil: 1"},
        {"download": huge},
        {"format": "car", "dag-scope": huge, "car-version": huge},
    ]
    for query in queries:
        response = await client.get(f"/ipfs/{cid}", params=query)
        assert response.status_code in (200, 400), query
        assert "x-evil" not in response.headers
    # a file name that is not UTF-8, with a line separator and a NUL
    odd = await client.get(f"/ipfs/{cid}?filename=a%ED%B3%BFb%E2%80%A8%00.txt&download=true")
    assert odd.status_code == 200
    disposition = odd.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="a') and disposition.isprintable()
    assert "\x00" not in disposition and "b__.txt" in disposition
    long_name = await client.get(f"/ipfs/{cid}", params={"filename": "n" * 5000 + ".txt"})
    assert len(long_name.headers["content-disposition"]) < 600
    # a path into a record's list: digits that int() refuses, or that are not ASCII
    for segment in (huge, "\u00b2", "\u0661"):
        response = await client.get(f"/ipfs/{record}/tags/{segment}")
        assert response.status_code == 404, segment[:10]


def test_parse_range_bounds_digits_and_takes_only_ascii_ones():
    huge = "9" * 5000
    assert parse_range(f"bytes={huge}-", 10).kind is RangeKind.UNSATISFIABLE
    assert parse_range(f"bytes=-{huge}", 10).range == ByteRange(0, 10)
    assert parse_range(f"bytes=3-{huge}", 10).range == ByteRange(3, 10)
    assert parse_range(f"bytes={huge}-3", 10).kind is RangeKind.FULL  # last < first: ignored
    assert parse_range(f"bytes={'0' * 5000}2-3", 10).range == ByteRange(2, 4)
    assert parse_range("bytes=-" + "0" * 5000, 10).kind is RangeKind.UNSATISFIABLE
    assert parse_range("bytes=\u0661-\u0662", 10).kind is RangeKind.FULL  # not HTTP digits
    assert parse_range("bytes=1-2\n", 10).kind is RangeKind.FULL


# -- finding 1 (c): the owner's own record --------------------------------------------------


async def test_owner_adding_bytes_first_indexed_from_a_peer_signs_its_own_record(app, tmp_path):
    client, node = app
    data = b"a work both of us have\n"
    payload = Block.encode(data)
    alice = Identity.generate()
    record = _peer_asset(alice, payload.cid, name="work.txt", size=len(data), mime="text/plain")
    assert await _sync_from_peer(node, alice, dag.FlatFsBlockstore(tmp_path / "a"), record) == 1
    assert (await node.asset(payload.cid)).signer == alice.did
    upload = await client.post("/api/v1/assets?name=work.txt", content=data)
    assert upload.status_code == 201, upload.text
    body = upload.json()
    assert body["existed"] is False and body["signer"] == node.did
    assert body["cid"] == dag.cid_to_str(payload.cid)
    signed = (await client.get(f"/api/v1/records/{body['record']}")).json()["record"]
    assert signed["signer"] == node.did
    row = await node.asset(payload.cid)
    assert row is not None and row.signer == node.did and row.record == body["record"]
    again = await client.post("/api/v1/assets?name=work.txt", content=data)
    assert again.status_code == 200 and again.json()["existed"] is True
    assert again.json()["record"] == body["record"]
    # a peer's record arriving after ours does not take the row back
    bob = Identity.generate()
    late = _peer_asset(bob, payload.cid, name="work.txt", size=len(data))
    assert await _sync_from_peer(node, bob, dag.FlatFsBlockstore(tmp_path / "b"), late) == 1
    assert (await node.asset(payload.cid)).signer == node.did


# -- finding 6 (part): concurrent uploads of one file ------------------------------------------


@pytest.mark.daemon
@pytest.mark.slow
def test_concurrent_uploads_of_one_file_make_one_record_and_one_commit(tmp_path):
    daemon = DaemonProcess(tmp_path / "home").start()
    data = b"the same bytes, twelve times\n" * 1000
    results: list[httpx.Response] = []
    gate = threading.Barrier(12)

    def upload() -> None:
        with daemon.http() as client:
            gate.wait()
            results.append(client.post("/api/v1/assets", params={"name": "x.txt"}, content=data))

    try:
        threads = [threading.Thread(target=upload) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        did = daemon.api("GET", "/healthz").json()["did"]
    finally:
        daemon.stop()
    assert len(results) == 12
    assert sorted(r.status_code for r in results) == [200] * 11 + [201], [r.text for r in results]
    assert len({r.json()["record"] for r in results}) == 1
    assert sum(not r.json()["existed"] for r in results) == 1
    repo = RepoIndex(daemon.home / "p2p.db")
    try:
        assert [row["type"] for row in repo.records(did)] == ["asset"]
    finally:
        repo.db.close()
    from daemon.core.index import Index

    index = Index(daemon.home / "index.db")
    try:
        assert len(index.records_of("asset")) == 1
    finally:
        index.close()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- the same, in a real browser ----------------------------------------------------------------

PAGE = b"<title>t</title><script>document.title = 'ran on ' + location.origin</script>\n"


@pytest.mark.daemon
@pytest.mark.browser
def test_chromium_runs_no_script_from_the_gateway(tmp_path):
    """Debian's Chromium opens content whose stored type is a comma list ending in text/html
    (as a peer's record once made it; written straight into the index here, as an index from
    before the fix may hold it), and an honest text/html page: no script runs in either."""
    import sqlite3

    from tests.harness.browser import launch_chromium, log_in, require_chromium
    from tests.harness.web_daemons import webui_daemon

    require_chromium()
    with webui_daemon(tmp_path / "home") as daemon:
        hostile = daemon.add_bytes(PAGE, "notes.txt")["cid"]
        honest = daemon.api(
            "POST",
            "/api/v1/assets",
            params={"name": "page.html"},
            content=PAGE + b"<!-- honest -->",
            headers={"Content-Type": "text/html"},
        ).json()["cid"]
        with sqlite3.connect(daemon.home / "index.db") as db:
            db.execute("update assets set mime = ? where cid = ?", (HOSTILE_MIME, hostile))
        base = daemon.api_url.rstrip("/")
        with launch_chromium() as browser:
            page = browser.new_context().new_page()
            log_in(page, base)  # the owner's session cookie is there to be stolen
            for cid in (hostile, honest):
                response = page.goto(f"{base}/ipfs/{cid}")
                assert response is not None and response.status == 200
                page.wait_for_load_state("load")
                assert "ran on" not in page.title(), (cid, page.title())
                assert response.headers["content-security-policy"] == "sandbox"
