"""The pages whose data only a P2P daemon has: the home page's peer, the jobs page with the
render market running, and a work's page with a claim on it. One real ``artdag daemon`` (P2P
on, loopback only) whose owner password was set by ``artdag init --password-stdin``; the asset
is added and claimed with the CLI, which goes through that daemon."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.daemons import DaemonProcess
from tests.harness.web_daemons import OWNER_PASSWORD, log_in_client

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("webui-p2p") / "home")
    d.init(OWNER_PASSWORD).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def owner(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    client = httpx.Client(base_url=daemon.api_url, timeout=60, follow_redirects=False)
    r = log_in_client(client, next_path="/")
    assert r.status_code in (302, 303), r.text
    yield client
    client.close()


def _get(client: httpx.Client, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return html.unescape(r.text)


def test_home_names_the_peer(daemon: DaemonProcess, owner: httpx.Client) -> None:
    page = _get(owner, "/")
    assert f"libp2p peer <code>{daemon.peer_id}</code>" in page
    assert "P2P off" not in page


def test_jobs_page_with_the_market_running(owner: httpx.Client) -> None:
    page = _get(owner, "/jobs?role=requester")
    assert 'data-market="off"' not in page
    assert "Volunteers and their credit" in page
    assert "No requester jobs yet." in page


def test_a_claimed_work_shows_its_claim(
    daemon: DaemonProcess, owner: httpx.Client, tmp_path: Path
) -> None:
    work = tmp_path / "work.txt"
    work.write_text("a work with an owner\n")
    cid = daemon.cli("add", str(work)).stdout.decode().split()[0]
    claim = daemon.cli("claim", cid, "--license", "CC-BY-4.0").stdout.decode().strip()
    page = _get(owner, f"/assets/{cid}")
    assert f'data-claim="{claim}"' in page
    assert "CC-BY-4.0" in page
    assert "not yet" in page  # the claim is not anchored
