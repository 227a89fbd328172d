"""Every pins and pinning command gives the same result with and without a daemon.

One home is prepared (two assets, a pinning token, pin requests that have settled) and copied;
the same commands run, in the same order, on the first copy in-process (``ARTDAG_API=local``,
no daemon) and on the second through a real daemon (``ARTDAG_API=remote``). Stdout, the exit
status and the error line must match; only what cannot be equal is normalised: fresh tokens,
times, and what only a running daemon remembers (the last policy round before ``--run``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import dag
from daemon.cli.main import main
from daemon.config import load_config
from daemon.core.pinning_api.request_store import PinRequestStore
from daemon.core.pinning_api.requests import PinSpec
from tests.harness.daemons import DaemonProcess

pytestmark = pytest.mark.daemon

BAD_CID = "bafy-not-a-cid"


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    error: str  # the last line of stderr


def invoke(home: Path, mode: str, args: list[str]) -> Outcome:
    env = {"ARTDAG_HOME": str(home), "ARTDAG_API": mode, "ARTDAG_SYNC": "batch"}
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    lines = result.stderr.strip().splitlines()
    return Outcome(result.exit_code, result.stdout, lines[-1] if lines else "")


def prepare(home: Path) -> dict[str, str]:
    """Two assets of the same size, one token, a pinned and a failed request."""
    assert invoke(home, "local", ["init"]).code == 0
    cids = {}
    for name in ("first", "second"):
        src = home.parent / f"{name}.bin"
        src.write_bytes(name.encode() * 40_000)
        added = invoke(home, "local", ["add", str(src), "--name", name])
        assert added.code == 0, added
        cids[name] = added.stdout.strip().splitlines()[-1]
    assert invoke(home, "local", ["pinning", "token-add", "laptop"]).code == 0
    config = load_config(home, environ={})
    requests = PinRequestStore(config.pinning_db_path)
    try:
        done = requests.add(PinSpec(cid=cids["first"], name="kept"), owner="laptop")
        requests.set_status(done.requestid, "pinned", {"dag_size": "1"})
        lost = dag.cid_to_str(dag.Block.encode(b"gone", codec="raw").cid)
        failed = requests.add(PinSpec(cid=lost), owner="laptop")
        requests.set_status(failed.requestid, "failed", {"status_details": "timed out"})
    finally:
        requests.close()
    return cids


def commands(cids: dict[str, str]) -> list[list[str]]:
    """The commands, in order (each side works on its own copy of the home)."""
    mine = cids["first"]
    return [
        ["pin", "ls"],
        ["pin", "ls", "--json"],
        ["pin", "ls", "--reason", "local"],
        ["pin", "add", cids["first"]],
        ["pin", "add", cids["first"], "--json"],
        ["pin", "add", BAD_CID],
        ["pin", "policy"],
        ["pin", "policy", "--run"],
        ["pin", "policy", "--run", "--json"],
        ["gc", "--grace", "0"],
        ["gc", "--grace", "0", "--json"],
        ["pin", "rm", mine],
        ["pin", "rm", mine],
        ["pin", "rm", "not/a-cid"],
        ["pinning", "token-ls"],
        ["pinning", "token-ls", "--json"],
        ["pinning", "token-add", "phone"],
        ["pinning", "token-add", "phone"],
        ["pinning", "token-add", "bad/name"],
        ["pinning", "token-rm", "phone"],
        ["pinning", "token-rm", "phone"],
        ["pinning", "ls"],
        ["pinning", "ls", "--json"],
        ["pinning", "ls", "--status", "failed"],
        ["pinning", "ls", "--limit", "0"],
    ]


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def normalise(args: list[str], outcome: Outcome) -> Outcome:
    out, error = TIME.sub("TIME", outcome.stdout), outcome.error
    out = re.sub(r"in \d+\.\d\d s", "in T s", out)
    if args[:2] == ["pinning", "token-add"] and outcome.code == 0:
        out = "TOKEN\n"
    if args == ["pin", "policy"]:  # only the daemon has run a round since it started
        out = "".join(line for line in out.splitlines(True) if not line.startswith("last round"))
    if "--json" in args and args[0] in ("gc", "pin") and args[1] in ("--grace", "policy"):
        out = json.dumps(drop_times(json.loads(out)))
    return Outcome(outcome.code, out, error)


def drop_times(value: object) -> object:
    if isinstance(value, dict):
        return {
            k: ("T" if k in ("at", "seconds") else drop_times(v))
            for k, v in value.items()
            if k != "last_gc"
        }
    if isinstance(value, list):
        return [drop_times(v) for v in value]
    return value


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("both-ways-pins")
    cids = prepare(root / "home")
    shutil.copytree(root / "home", root / "local")
    shutil.copytree(root / "home", root / "remote")
    yield root / "local", root / "remote", cids


def test_pins_and_pinning_commands_answer_alike_with_and_without_a_daemon(
    homes: tuple[Path, Path, dict[str, str]],
) -> None:
    local_home, remote_home, cids = homes
    assert not (local_home / "daemon.json").exists()
    local = [(args, normalise(args, invoke(local_home, "local", args))) for args in commands(cids)]
    daemon = DaemonProcess(remote_home, ARTDAG_P2P="false").start()
    try:
        remote = [
            (args, normalise(args, invoke(remote_home, "remote", args))) for args in commands(cids)
        ]
    finally:
        daemon.stop()
    for (args, here), (_, there) in zip(local, remote, strict=True):
        assert here == there, (args, here, there)
    ran = [(" ".join(args), outcome) for args, outcome in local]

    def outcome(command: str, nth: int = 0) -> Outcome:
        return [o for c, o in ran if c == command][nth]

    # the commands did something: a failing one fails, a listing lists
    refused = outcome(f"pin add {BAD_CID}")
    assert refused.code != 0 and refused.error.startswith("artdag: error: "), refused
    assert outcome(f"pin add {cids['first']}").stdout.startswith(f"pinned {cids['first']} (")
    assert outcome(f"pin rm {cids['first']}").stdout.startswith(f"unpinned {cids['first']} (")
    assert outcome(f"pin rm {cids['first']}", 1).error.endswith("is not pinned")
    assert outcome("pinning token-rm phone").stdout == "revoked phone\n"
    assert outcome("pinning token-rm phone", 1).error == (
        "artdag: error: no pinning token named 'phone'"
    )
    assert "laptop\tTIME" in outcome("pinning token-ls").stdout
    listed = json.loads(outcome("pinning ls --json").stdout)
    assert listed["count"] == 2
    assert {r["status"] for r in listed["results"]} == {"pinned", "failed"}
    assert outcome("pinning ls --limit 0").code != 0
