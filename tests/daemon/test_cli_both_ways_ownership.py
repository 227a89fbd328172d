"""Every ownership, money, anchoring and fediverse command gives the same result with and
without a running daemon (issue 17: one node API, two implementations).

One home is prepared (a work added), then copied twice: the commands run in order on one copy
in-process (``ARTDAG_API=local``, no daemon) and on the other against a real daemon
(``ARTDAG_API=remote``). Each step's stdout, exit status and error line must match once what
must differ is normalised: record CIDs and hashes (records carry their creation time), times,
the home's path. The calendar is the test OpenTimestamps calendar, shared by both runs.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from daemon.cli.main import main
from tests.harness.daemons import DaemonProcess
from tests.peers.ots_calendar import TestCalendar, start_test_calendar

pytestmark = pytest.mark.daemon

Args = Callable[["Run"], list[str]]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


@dataclass
class Run:
    """One pass over the steps on one home: what each step printed."""

    home: Path
    work: str
    calendar: str
    outcomes: dict[str, Outcome]

    def last_line(self, step: str) -> str:
        return self.outcomes[step].stdout.strip().splitlines()[-1]

    def first_line(self, step: str) -> str:
        return self.outcomes[step].stdout.strip().splitlines()[0]


def _cal(run: Run) -> list[str]:
    return ["--calendar", run.calendar, "--headers", run.calendar]


MISSING = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"  # in no store
# (name, arguments): each pass runs them in this order
STEPS: list[tuple[str, Args]] = [
    (
        "claim",
        lambda r: [
            "claim",
            r.work,
            "--split",
            "footage=70",
            "--split",
            "recipe=30",
            "--license",
            "CC-BY-4.0",
        ],
    ),
    ("claim-missing", lambda r: ["claim", MISSING]),
    ("disputes", lambda r: ["disputes"]),
    ("disputes-json", lambda r: ["disputes", "--json"]),
    ("anchor", lambda r: ["anchor", *_cal(r)]),
    ("anchor-again", lambda r: ["anchor", *_cal(r)]),
    ("anchors", lambda r: ["anchors", *_cal(r)]),
    ("anchors-json", lambda r: ["anchors", "--json"]),
    ("verify-anchor-pending", lambda r: ["verify-anchor", r.last_line("claim"), *_cal(r)]),
    ("verify-anchor-none", lambda r: ["verify-anchor", MISSING, *_cal(r)]),
    (
        "usage",
        lambda r: ["usage", r.work, "--kind", "view", "--count", "3", "--epoch", "2026-11"],
    ),
    ("usage-bad-epoch", lambda r: ["usage", r.work, "--kind", "view", "--epoch", "Nov"]),
    ("settle", lambda r: ["settle", "--epoch", "2026-11", "--pool", "100.00"]),
    ("settle-nothing", lambda r: ["settle", "--epoch", "2026-08", "--pool", "1.00"]),
    (
        "statement-proof",
        lambda r: ["statement-proof", r.first_line("settle"), r.last_line("settle").split()[0]],
    ),
    (
        "statement-proof-nobody",
        lambda r: ["statement-proof", r.first_line("settle"), "did:nobody"],
    ),
    ("followers", lambda r: ["followers"]),
    ("block", lambda r: ["block", "Example.ORG"]),
    ("followers-blocked", lambda r: ["followers", "--json"]),
    ("unblock", lambda r: ["unblock", "example.org"]),
    ("unblock-again", lambda r: ["unblock", "example.org"]),
    ("publish", lambda r: ["publish", r.work, "--text", "A work"]),
    ("publish-again", lambda r: ["publish", r.work]),
    ("publish-missing", lambda r: ["publish", MISSING]),
    ("deliveries", lambda r: ["deliveries"]),
    ("deliveries-json", lambda r: ["deliveries", "--json"]),
]

_CID = re.compile(r"\bbaf[a-z2-7]{50,}\b")
_HEX = re.compile(r"\b[0-9a-f]{16,}\b")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
_NONCE = re.compile(r"append [0-9a-f]+")


def normalise(text: str, run: Run) -> str:
    """Only what must differ between the two homes: paths, record CIDs (a record holds its
    creation time), hashes over them, and times."""
    text = text.replace(str(run.home), "<home>")
    keep = {run.work, MISSING}
    text = _CID.sub(lambda m: m[0] if m[0] in keep else "<record>", text)
    text = _NONCE.sub("append <nonce>", text)
    text = _HEX.sub("<hash>", text)
    return _CREATED.sub("<time>", text)


def _run_steps(home: Path, mode: str, work: str, calendar: str) -> Run:
    run = Run(home, work, calendar, {})
    runner = CliRunner()
    env = {"ARTDAG_HOME": str(home), "ARTDAG_API": mode, "ARTDAG_SYNC": "batch"}
    for name, args in STEPS:
        result = runner.invoke(main, args(run), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{mode} {name}: {result.exception!r}") from result.exception
        run.outcomes[name] = Outcome(result.exit_code, result.stdout, result.stderr)
    return run


@pytest.fixture(scope="module")
def calendar() -> Iterator[TestCalendar]:
    """The test calendar, served from a thread of its own for the module's runs."""
    started: list[TestCalendar] = []
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            started.append(await nursery.start(start_test_calendar))
            ready.set()
            while not stop.is_set():
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(serve,), daemon=True)
    thread.start()
    assert ready.wait(30), "the test calendar did not start"
    yield started[0]
    stop.set()
    thread.join(10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, calendar: TestCalendar) -> tuple[Run, Run]:
    root = tmp_path_factory.mktemp("both-ways")
    prepared = root / "prepared"
    source = root / "work.txt"
    source.write_text("a work of text, not media, so publishing probes nothing\n")
    env = {"ARTDAG_HOME": str(prepared), "ARTDAG_API": "local", "ARTDAG_SYNC": "batch"}
    added = CliRunner().invoke(main, ["add", str(source)], env=env)
    assert added.exit_code == 0, added.output
    work = added.stdout.strip().splitlines()[-1]
    shutil.copytree(prepared, root / "local")
    shutil.copytree(prepared, root / "remote")
    local = _run_steps(root / "local", "local", work, calendar.url)
    daemon = DaemonProcess(root / "remote").start()
    try:
        remote = _run_steps(root / "remote", "remote", work, calendar.url)
    finally:
        daemon.stop()
    return local, remote


@pytest.mark.parametrize("step", [name for name, _ in STEPS])
def test_same_result_with_and_without_a_daemon(runs: tuple[Run, Run], step: str) -> None:
    local, remote = runs
    mine, theirs = local.outcomes[step], remote.outcomes[step]
    assert mine.code == theirs.code, (mine, theirs)
    assert normalise(mine.stdout, local) == normalise(theirs.stdout, remote)
    error_lines = [
        [line for line in normalise(o.stderr, r).splitlines() if line.startswith("artdag: error")]
        for o, r in ((mine, local), (theirs, remote))
    ]
    assert error_lines[0] == error_lines[1]
    if step.endswith(("-missing", "-none", "-nothing", "-nobody", "-bad-epoch")):
        assert mine.code != 0 and (error_lines[0] or "Usage" in mine.stderr), mine


def test_the_steps_did_what_they_say(runs: tuple[Run, Run]) -> None:
    """The comparison above is not of two empty outputs: each pass claimed, anchored,
    settled, blocked and published."""
    for run in runs:
        out = {name: o.stdout for name, o in run.outcomes.items()}
        err = {name: o.stderr for name, o in run.outcomes.items()}
        assert f"claimed {run.work} (footage 70%, recipe 30%)" in err["claim"]
        assert "is not in the store" in err["claim-missing"]
        assert "anchored 1 records" in err["anchor"] and "nothing to anchor" in err["anchor-again"]
        assert "pending" in out["anchors"]
        assert run.outcomes["verify-anchor-pending"].code == 1
        assert "FAILED: pending: not yet in a Bitcoin block" in out["verify-anchor-pending"]
        assert re.search(r"did:key:\S+\s+100\.00 EUR", out["settle"])
        assert '"verified": true' in out["statement-proof"]
        assert "no line for payee" in err["statement-proof-nobody"]
        assert out["block"] == "blocked example.org (and its subdomains)\n"
        assert '"example.org"' in out["followers-blocked"]
        assert out["unblock-again"] == "example.org was not blocked\n"
        assert out["publish"].startswith("published http")
        assert "already published as" in out["publish-again"]
