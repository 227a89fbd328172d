"""The local JSON API, served by the real hypercorn server on 127.0.0.1 (in-process), and the
``artdag daemon`` process itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import httpx
import pytest
import trio

from daemon.config import load_config
from daemon.home import read_token
from daemon.runtime import serve_http
from daemon.services import open_services
from tests.harness.cli_helpers import ARTDAG, Home


@pytest.fixture
def settings():
    return {}


@pytest.fixture
async def api(tmp_path, settings):
    config = load_config(tmp_path / "home", environ={}, **settings)
    async with open_services(config) as services, trio.open_nursery() as nursery:
        node = services.node
        urls = await nursery.start(serve_http, services, read_token(config), "127.0.0.1", 0)
        token = read_token(config)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, node
        nursery.cancel_scope.cancel()


async def test_healthz_needs_no_token(api):
    client, node = api
    response = await client.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json()["did"] == node.did


async def test_api_refuses_missing_or_wrong_token(api):
    client, _ = api
    for header in ("", "Bearer nope", "Basic abc"):
        response = await client.get("/api/v1/assets", headers={"Authorization": header})
        assert response.status_code == 401
        assert "token" in response.json()["error"]
    upload = await client.post(
        "/api/v1/assets?name=x", content=b"abc", headers={"Authorization": "Bearer nope"}
    )
    assert upload.status_code == 401
    assert (await client.get("/api/v1/assets")).json()["assets"] == []


async def test_upload_list_get_and_download(api):
    client, node = api
    data = os.urandom(2 * 1024 * 1024 + 3)

    async def body():
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    response = await client.post(
        "/api/v1/assets",
        params=[("name", "clip.mp4"), ("tag", "demo"), ("tag", "art")],
        content=body(),
        headers={"Content-Type": "video/mp4"},
    )
    assert response.status_code == 201, response.text
    asset = response.json()
    assert asset["size"] == len(data) and asset["mime"] == "video/mp4"
    assert asset["tags"] == ["art", "demo"]

    # the same function serves the CLI: the CID equals a direct import of the same bytes
    import dag

    direct = dag.FileBuilder()
    for i in range(0, len(data), 1 << 20):
        direct.add_chunk(data[i : i + (1 << 20)])
    assert asset["cid"] == dag.cid_to_str(direct.finish()[1])

    listed = (await client.get("/api/v1/assets", params={"tag": "art"})).json()["assets"]
    assert [a["cid"] for a in listed] == [asset["cid"]]
    detail = (await client.get(f"/api/v1/assets/{asset['cid']}")).json()
    assert detail["asset_record"]["type"] == "asset"
    assert detail["asset_record"]["signer"] == node.did
    content = await client.get(f"/api/v1/assets/{asset['cid']}/content")
    assert content.content == data
    assert content.headers["content-type"] == "video/mp4"

    again = await client.post("/api/v1/assets?name=clip.mp4&tag=art&tag=demo", content=data)
    assert again.status_code == 200 and again.json()["existed"] is True


async def test_api_errors_are_clear(api):
    client, _ = api
    bad = await client.get("/api/v1/assets/not-a-cid")
    assert bad.status_code == 400 and "not a valid CID" in bad.json()["error"]
    missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert (await client.get(f"/api/v1/assets/{missing}")).status_code == 404
    assert (await client.get(f"/api/v1/assets/{missing}/content")).status_code == 404
    no_name = await client.post("/api/v1/assets", content=b"x")
    assert no_name.status_code == 400 and "name" in no_name.json()["error"]
    assert (await client.get("/api/v1/assets?limit=x")).status_code == 400


@pytest.mark.parametrize("settings", [{"max_upload_bytes": 1000}])
async def test_upload_over_the_limit_is_refused(api):
    client, _ = api
    small = await client.post("/api/v1/assets?name=small", content=b"x" * 1000)
    assert small.status_code == 201

    async def body():
        for _ in range(5):
            yield b"y" * 1000

    big = await client.post("/api/v1/assets?name=big", content=body())
    assert big.status_code == 413
    assert "1000" in big.json()["error"]
    names = [a["name"] for a in (await client.get("/api/v1/assets")).json()["assets"]]
    assert names == ["small"]


@pytest.mark.parametrize("settings", [{"max_upload_bytes": 1000}])
async def test_a_slowly_streamed_upload_over_the_limit_is_refused(api):
    """Quart's MAX_CONTENT_LENGTH compares only what is buffered at one time: 50 chunks of 100
    bytes, each drained before the next arrives, were all stored (201) under a 1,000-byte
    limit. The route counts the whole body."""
    client, _ = api

    async def trickle():
        for _ in range(50):
            yield b"z" * 100
            await trio.sleep(0.01)

    big = await client.post("/api/v1/assets?name=trickle", content=trickle())
    assert big.status_code == 413, big.text
    names = [a["name"] for a in (await client.get("/api/v1/assets")).json()["assets"]]
    assert "trickle" not in names


@pytest.mark.daemon
def test_daemon_process_starts_on_loopback_and_stops_on_sigterm(tmp_path):
    home = Home(tmp_path / "home")
    proc = subprocess.Popen(
        [ARTDAG, "daemon"],
        env=home.env(ARTDAG_PORT="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for line in proc.stderr:
            match = re.search(r"artdag daemon ready: (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url and url.startswith("http://127.0.0.1:"), url
        health = httpx.get(f"{url}/healthz", timeout=10).json()
        assert health["status"] == "ok"
        assert health["did"] == home.out("init").strip()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
