"""The content and status commands give the same result with and without a daemon.

One home is prepared (two assets, one exported CAR) and copied; the same commands run, in the
same order, on one copy in-process (``ARTDAG_API=local``, no daemon) and on the other through a
real daemon (``ARTDAG_API=remote``, p2p off). Stdout, the exit status and the last line of
stderr must match; only each side's own paths (``HOME``) and the times and CIDs of records
signed during the run are normalised. The network commands
need the daemon's libp2p host: in-process they say so in one line, which is checked too.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.cli.main import main
from tests.harness.daemons import DaemonProcess

pytestmark = pytest.mark.daemon

BIG = b"0123456789abcdef" * 20_000  # five chunks of 64 KiB
MISSING = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # nobody has it


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    error: str  # the last line of stderr


def invoke(home: Path, mode: str, args: list[str]) -> Outcome:
    env = {"ARTDAG_HOME": str(home), "ARTDAG_API": mode, "ARTDAG_SYNC": "batch"}
    args = [arg.replace("{HOME}", str(home)) for arg in args]
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    lines = result.stderr.strip().splitlines()
    error = lines[-1].replace(str(home), "HOME") if lines else ""
    return Outcome(result.exit_code, result.stdout, error)


def prepare(home: Path) -> dict[str, str]:
    """Two assets (a file of several chunks and a small text), their records, a CAR file."""
    assert invoke(home, "local", ["init", "--password-stdin"]).code == 0
    cids: dict[str, str] = {}
    big = home.parent / "big.bin"
    big.write_bytes(BIG)
    small = home.parent / "small.txt"
    small.write_text("a small text\n")
    for key, path, extra in (("big", big, ["--chunk-size", "65536"]), ("small", small, [])):
        added = invoke(home, "local", ["add", str(path), "--tag", "t", *extra])
        assert added.code == 0, added
        cids[key] = added.stdout.strip().splitlines()[-1]
    assets = invoke(home, "local", ["assets"]).stdout.splitlines()
    assert len(assets) == 2
    record = invoke(home, "local", ["assets", "--json"]).stdout
    cids["record"] = re.findall(r'"record": "(\w+)"', record)[0]
    return cids


def normalise(outcome: Outcome) -> Outcome:
    """A record signed now names the time it was signed: its time and CID differ."""
    error = re.sub(r"record \w+\)$", "record R)", outcome.error)
    stdout = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", outcome.stdout)
    return Outcome(outcome.code, stdout, error)


def commands(cids: dict[str, str], sources: Path) -> list[list[str]]:
    """The commands, in order; ``{HOME}`` is each side's own home."""
    big, small, record = cids["big"], cids["small"], cids["record"]
    new = sources / "new.txt"
    return [
        ["assets"],
        ["assets", "--json"],
        ["assets", "--tag", "none"],
        ["cat", small],
        ["cat", big, "--offset", "1000", "--length", "300"],
        ["cat", "not-a-cid"],
        ["cat", MISSING],
        ["dag", "get", big],
        ["dag", "get", small],
        ["dag", "get", record],
        ["dag", "get", MISSING],
        ["record", "verify", record],
        ["record", "verify", small],
        ["export", big, "-o", "{HOME}/big.car"],
        ["export", MISSING, "-o", "{HOME}/missing.car"],
        ["import", "{HOME}/big.car"],
        ["import", str(sources / "small.txt")],
        ["import", "{HOME}/nothing-here.car"],
        ["add", str(new), "--name", "new one", "--tag", "n"],
        ["add", str(new), "--name", "new one", "--tag", "n"],
        ["assets", "--tag", "n"],
        ["add", str(new), "--chunk-size", "99999999"],
        ["add", str(new), "--tag", "bad\ntag"],
        ["add", str(sources)],
        ["verify"],
        ["verify", "--json"],
    ]


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("both-ways-core")
    cids = prepare(root / "home")
    (root / "new.txt").write_text("added on both sides\n")
    shutil.copytree(root / "home", root / "local")
    shutil.copytree(root / "home", root / "remote")
    yield root / "local", root / "remote", cids


def test_content_commands_answer_alike_with_and_without_a_daemon(
    homes: tuple[Path, Path, dict[str, str]],
) -> None:
    local_home, remote_home, cids = homes
    sources = local_home.parent
    assert not (local_home / "daemon.json").exists()
    local = [(args, invoke(local_home, "local", args)) for args in commands(cids, sources)]
    daemon = DaemonProcess(remote_home, ARTDAG_P2P="false").start()
    try:
        remote = [(args, invoke(remote_home, "remote", args)) for args in commands(cids, sources)]
        network_commands = [
            invoke(remote_home, "remote", ["peers"]),
            invoke(remote_home, "remote", ["get", cids["small"]]),
        ]
    finally:
        daemon.stop()
    for (args, here), (_, there) in zip(local, remote, strict=True):
        assert normalise(here) == normalise(there), (args, here, there)
    assert (local_home / "big.car").read_bytes() == (remote_home / "big.car").read_bytes()

    ran = {" ".join(args): outcome for args, outcome in local}
    # the commands did something: a failing one fails with one line, a listing lists
    assert ran[f"cat {cids['small']}"].stdout == "a small text\n"
    assert ran[f"cat {cids['big']} --offset 1000 --length 300"].stdout == (BIG[1000:1300].decode())
    assert ran[f"cat {MISSING}"].error == f"artdag: error: block not found: {MISSING}"
    assert ran[f"export {MISSING} -o {{HOME}}/missing.car"].code == 1
    assert ran["import {HOME}/big.car"].stdout.strip() == cids["big"]
    assert ran[f"record verify {cids['record']}"].error.startswith("valid asset record")
    assert ran[f"record verify {cids['small']}"].code == 1
    assert ran["add " + str(sources / "new.txt") + " --chunk-size 99999999"].error == (
        "artdag: error: chunk size must be 1..1048576 bytes, got 99999999"
    )
    assert "new one" in ran["assets --tag n"].stdout
    assert ran["verify"].error.startswith("checked ")
    # in-process, the network commands say in one line that they need the daemon; with a
    # daemon whose p2p is off, the daemon says so
    for args in (["peers"], ["connect", "/ip4/127.0.0.1/tcp/1"], ["get", cids["small"]]):
        alone = invoke(local_home, "local", args)
        assert alone.code == 1 and alone.error.endswith(
            "needs the running daemon (start it: artdag daemon)"
        ), alone
    for outcome in network_commands:
        assert outcome.code == 1
        assert outcome.error == (
            "artdag: error: the p2p network is disabled on this node ([p2p] enabled = false)"
        ), outcome
    shown = invoke(local_home, "local", ["id"])
    assert shown.stdout.endswith("address: (daemon not running)\n")
