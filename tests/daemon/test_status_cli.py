"""``artdag status`` (daemon/cli_status.py): the real CLI against a running daemon (through
``GET /api/v1/status/full``) and without one (from the node's files)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.harness.cli_helpers import Home
from tests.harness.daemons import DaemonProcess

pytestmark = [pytest.mark.daemon, pytest.mark.cli]

CREATOR = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def test_status_without_a_daemon_reads_the_node_files(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.run("init")
    (home.path / "config.toml").write_text(
        f'[pinning]\nquota_bytes = 1000000\nfollow_creators = ["{CREATOR}"]\n'
    )
    data = os.urandom(250_000)
    (tmp_path / "clip.bin").write_bytes(data)
    home.run("add", str(tmp_path / "clip.bin"))
    status = json.loads(home.out("status", "--json"))
    assert status["daemon"] == {"running": False}
    assert status["pins"] == {"total": 2, "by_reason": {"local": 2}}  # the file and its record
    assert status["store"]["blocks"] == 3  # and the creator repo's commit
    assert status["store"]["bytes"] >= len(data)
    assert status["quota_bytes"] == 1_000_000
    assert status["quota_used_percent"] == round(100 * status["store"]["bytes"] / 1e6, 1)
    assert status["followed_creators"] == 1
    assert status["assets"] == 1
    assert status["gateway"] is None and status["peers"] is None
    screen = home.out("status")
    assert "not running" in screen
    assert status["did"] in screen
    assert "of 976.6 KiB quota (" in screen
    assert "local 2" in screen


def test_status_with_a_daemon_asks_it(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path / "home", ARTDAG_P2P="false").start()
    try:
        cid = daemon.add_bytes(b"x" * 5000, "x.txt")["cid"]
        with httpx.Client(base_url=daemon.api_url, timeout=30) as client:
            assert client.get(f"/ipfs/{cid}").status_code == 200
            assert client.get(f"/ipfs/{cid}").status_code == 200
        status = json.loads(daemon.cli("status", "--json").stdout)
        running = status["daemon"]
        assert running["running"] is True and running["pid"] == daemon.pid
        assert running["urls"] == [daemon.api_url] and running["uptime_s"] >= 0
        assert running["peer_id"] is None  # --no-p2p
        assert status["gateway"] == {"requests": 2, "bytes_sent": 10_000, "rate_limited": 0}
        assert status["pins"]["by_reason"] == {"local": 2}
        assert status["deliveries"] is not None  # the fediverse bridge's queue, all states
        screen = daemon.cli("status").stdout.decode()
        assert f"running, pid {daemon.pid}" in screen
        assert daemon.api_url in screen
        assert "2 requests" in screen
    finally:
        daemon.stop()
