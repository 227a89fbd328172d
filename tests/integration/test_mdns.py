"""mDNS discovery between two real daemons, in a network namespace of the test's own making
(only a multicast-enabled loopback inside, so nothing is sent beyond this sandbox)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the child runs tests.peers.mdns_pair from here
SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"


def _namespace_problem() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) not installed"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", SETUP], capture_output=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace here: {probe.stderr.decode().strip()}"
    return None


@pytest.mark.slow
def test_two_daemons_find_each_other_by_mdns(tmp_path: Path) -> None:
    problem = _namespace_problem()
    if problem is not None:
        if os.environ.get("CI"):  # CI runs as root with util-linux and iproute2 installed
            pytest.fail(f"mDNS test cannot run in CI: {problem}")
        pytest.skip(problem)
    command = f'{SETUP} && exec "$@"'
    pair = [sys.executable, "-m", "tests.peers.mdns_pair", str(tmp_path)]
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", command, "sh", *pair],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert "FOUND" in proc.stdout.decode()
