"""contrib/systemd/artdag.service: parsed as an INI file, its ``ExecStart`` command line is one
the real CLI accepts (``artdag daemon --help`` lists each flag, and click parses the whole line
without running it), its hardening is there, and ``systemd-analyze verify`` accepts it (on a
copy whose ExecStart points at this virtualenv's ``artdag``, since /usr/local/bin/artdag is not
installed here)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.cli.main import main
from tests.harness.cli_helpers import ARTDAG

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "artdag.service"

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
}


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def test_the_service_runs_artdag_daemon_as_its_own_user_in_var_lib() -> None:
    service = unit()["Service"]
    assert service["Type"] == "simple"
    assert service["User"] == "artdag"
    assert "ARTDAG_HOME=/var/lib/artdag" in service["Environment"].split()
    assert service["Restart"] == "on-failure"
    assert int(service["TimeoutStopSec"]) > 5
    assert int(service["LimitNOFILE"]) >= 4096
    assert "/var/lib/artdag" in service["ReadWritePaths"].split()
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
    for key, wanted in HARDENING.items():
        assert service.get(key) == wanted, f"{key} is {service.get(key)!r}, want {wanted!r}"


@pytest.mark.cli
def test_exec_start_is_a_command_line_the_real_cli_accepts() -> None:
    argv = exec_start()
    assert argv[0] == "/usr/local/bin/artdag" and argv[1] == "daemon"
    help_text = subprocess.run(
        [ARTDAG, "daemon", "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    flags = [arg.split("=")[0] for arg in argv[2:] if arg.startswith("--")]
    assert flags, "ExecStart passes its address explicitly"
    for flag in flags:
        assert flag in help_text, f"artdag daemon --help does not list {flag}"
    daemon = main.commands["daemon"]
    ctx = daemon.make_context("daemon", argv[2:])  # parses and type-checks, runs nothing
    assert ctx.params["host"] == "127.0.0.1"  # the HTTP server stays on loopback
    assert ctx.params["port"] == 8200


@pytest.mark.cli
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # scripts/install-test-peers.sh installs Debian's systemd where it can (root)
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (apt-get install systemd)", pytrace=False)
        pytest.skip("systemd-analyze is not installed and this user cannot install it")
    copy = tmp_path / "artdag.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/artdag", ARTDAG))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "artdag.service" not in result.stderr, result.stderr  # no warning about the unit
