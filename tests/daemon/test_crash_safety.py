"""``kill -9`` in the middle of ``artdag add`` must leave no corrupt block, and adding again
completes with the same root CID."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.harness.cli_helpers import Home

pytestmark = [pytest.mark.slow, pytest.mark.cli]


def _write_random(path, mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def test_kill_9_during_add_leaves_a_clean_store(tmp_path):
    home = Home(tmp_path / "home")
    home.run("init")
    src = tmp_path / "big.bin"
    _write_random(src, 400)
    blocks = home.path / "store" / "blocks"

    killed_mid_add = False
    for attempt in range(3):  # the add must be caught part-way; retry if it raced to the end
        proc = home.popen("add", str(src))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            written = sum(1 for _ in blocks.glob("*/*.data"))
            if written >= 20 + 40 * attempt:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_mid_add = True
            break
        proc.wait()
    assert killed_mid_add, "the add finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL

    partial = sum(1 for _ in blocks.glob("*/*.data"))
    assert 0 < partial < 400
    check = home.run("verify", check=False)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert "0 bad" in check.stderr.decode()
    assert not list(blocks.glob("*/.*.tmp")), "temp files of the killed writer were left behind"
    assert home.out("assets").strip() == "", "a half-added file must not be listed as an asset"

    cid = home.last_line("add", str(src))
    reference = Home(tmp_path / "reference")
    assert reference.last_line("add", str(src)) == cid
    assert home.run("verify").returncode == 0
    assert [line.split()[0] for line in home.out("assets").splitlines()] == [cid]
