"""Every render and market command gives the same result with and without a running daemon.

One prepared home (a clip, the single-effect recipe, one render so later renders come from the
cache, a few rows in the market ledger): each command runs first in-process
(``ARTDAG_API=local``, no ``daemon.json``), then against a real ``artdag daemon`` on that home
(``ARTDAG_API=remote``); stdout, exit status and stderr must match. A second, bare home with
P2P off shows the refusals of a node without a market, both ways. Commands run in this
process through click's CliRunner (the CLI calls ``trio.run``, so the tests are synchronous).
Only what must differ is normalised: render times and the provenance CID of a new render
(its record carries the time it was signed).
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
from daemon.config import load_config
from daemon.core.market.store import JobRow, MarketStore, ResultRow
from tests.harness.daemons import DaemonProcess
from tests.harness.media import make_video

pytestmark = [pytest.mark.daemon, pytest.mark.ffmpeg]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DID_A = "did:key:z6MkvolunteerAAAAAAAA"
DID_B = "did:key:z6MkvolunteerBBBBBBBB"


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def invoke(home: Path, *args: str, api: str, **env: str) -> Outcome:
    environ = {"ARTDAG_HOME": str(home), "ARTDAG_API": api, "ARTDAG_SYNC": "batch"}
    environ |= {"COLUMNS": "200"} | env
    result = CliRunner().invoke(main, list(args), env=environ)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def normalised(text: str) -> str:
    text = re.sub(r"in \d+\.\d+ s", "in S s", text)
    return re.sub(r"provenance baf\w+", "provenance CID", text)


def seed_ledger(home: Path) -> None:
    """Rows as the market service writes them (no volunteers run in this test)."""
    store = MarketStore(load_config(home, environ={}).index_path)
    try:
        base = {"step": "fast", "operation": "speed", "cache_id": "cache-1", "replicas": 2}
        base |= {"requester": "did:key:z6Mkrequester", "created": 100.0, "updated": 101.5}
        store.put_job(
            JobRow(
                job_id="job-requested-0001",
                role="requester",
                status="done",
                deadline=700.0,
                volunteers=[DID_A, DID_B],
                render_ms=2500,
                timings={"lease": 0.5, "fetch": 0.25},
                **base,
            )
        )
        store.put_job(
            JobRow(
                job_id="job-volunteered-01",
                role="volunteer",
                status="offered",
                deadline=700.0,
                **base,
            )
        )
        store.put_result(
            ResultRow(
                "job-requested-0001",
                DID_A,
                0,
                "bafyreceipt",
                "bafyout",
                "key",
                1000,
                900,
                "accepted",
                102.0,
            )
        )
        store.credit(DID_A, accepted=4, rendered_ms=6000)
        store.credit(DID_B, accepted=1, rejected=2, rendered_ms=1500)
    finally:
        store.close()


@dataclass(frozen=True)
class Prepared:
    home: Path
    clip: str
    recipe: str
    output: str
    bad_recipe: str


def prepare(root: Path) -> Prepared:
    home = root / "home"
    clip_file = make_video(root / "clip.mkv", seconds=1, size="160x90")
    clip = invoke(home, "add", str(clip_file), api="local").stdout.split()[-1]
    recipe = invoke(home, "recipe", "add", str(EXAMPLES / "single-effect.yaml"), api="local")
    recipe_cid = recipe.stdout.strip()
    first = invoke(home, "render", recipe_cid, "--input", f"clip={clip}", api="local")
    assert first.code == 0, first.stderr
    bad = root / "bad.yaml"
    node = "  n: {effect: glitch, input: a, params: {noise: 1000}}"
    bad.write_text(f"name: x\ninputs: [a]\nnodes:\n{node}\noutput: n\n")
    seed_ledger(home)
    return Prepared(home, clip, recipe_cid, first.stdout.strip(), str(bad))


def commands(p: Prepared) -> dict[str, tuple[str, ...]]:
    single = str(EXAMPLES / "single-effect.yaml")
    return {
        "effects": ("effects",),
        "effects --cids": ("effects", "--cids"),
        "provenance": ("provenance", p.output),
        "provenance --format tree": ("provenance", p.output, "--format", "tree"),
        "provenance --format json": ("provenance", p.output, "--format", "json"),
        "provenance --format dot": ("provenance", p.output, "--format", "dot"),
        "provenance --format svg": ("provenance", p.output, "--format", "svg"),
        "provenance (unknown)": ("provenance", p.clip),
        "provenance (bad cid)": ("provenance", "not-a-cid"),
        "recipe add": ("recipe", "add", single),
        "recipe add (invalid)": ("recipe", "add", p.bad_recipe),
        "recipe add (missing file)": ("recipe", "add", str(p.home / "nope.yaml")),
        "render (cached)": ("render", p.recipe, "--input", f"clip={p.clip}"),
        "render (YAML path, cached)": ("render", single, "--input", f"clip={p.clip}"),
        "render (bad param)": (
            "render",
            single,
            "--input",
            f"clip={p.clip}",
            "--param",
            "fast.factor=fast",
        ),
        "render (unbound input)": ("render", p.recipe),
        "render (new, fused)": (
            "render",
            p.recipe,
            "--input",
            f"clip={p.clip}",
            "--param",
            "fast.factor=0.5",
            "--fuse",
        ),
        "jobs": ("jobs",),
        "jobs --json": ("jobs", "--json"),
        "jobs --role volunteer --json": ("jobs", "--role", "volunteer", "--json"),
        "volunteers": ("volunteers",),
        "volunteers --json": ("volunteers", "--json"),
    }


OFF_COMMANDS: dict[str, tuple[str, ...]] = {
    "jobs (no market)": ("jobs",),
    "volunteers (no market)": ("volunteers",),
    "render --remote (no market)": ("render", "bafyreigh2akiscaildc", "--remote"),
}

Results = dict[str, tuple[Outcome, Outcome]]


def both_ways(home: Path, cases: dict[str, tuple[str, ...]], **env: str) -> Results:
    """Every case in-process on one copy of ``home`` (no daemon.json), then through a daemon
    on another copy: a render signs a new provenance record, which the other side must not
    see."""
    local_home, remote_home = home.with_name("local"), home.with_name("remote")
    shutil.copytree(home, local_home)
    shutil.copytree(home, remote_home)
    local = {name: invoke(local_home, *args, api="local", **env) for name, args in cases.items()}
    assert not (local_home / "daemon.json").exists()
    daemon = DaemonProcess(remote_home, **env).start()
    try:
        remote = {
            name: invoke(remote_home, *args, api="remote", **env) for name, args in cases.items()
        }
    finally:
        daemon.stop()
    return {name: (local[name], remote[name]) for name in cases}


@pytest.fixture(scope="module")
def on_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    prepared = prepare(tmp_path_factory.mktemp("both-ways-render"))
    yield both_ways(prepared.home, commands(prepared))


@pytest.fixture(scope="module")
def off_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    home = tmp_path_factory.mktemp("both-ways-no-market") / "home"
    invoke(home, "init", api="local", ARTDAG_P2P="false")
    yield both_ways(home, OFF_COMMANDS, ARTDAG_P2P="false")


CASES = [
    "effects", "effects --cids", "provenance", "provenance --format tree",
    "provenance --format json", "provenance --format dot", "provenance --format svg",
    "provenance (unknown)", "provenance (bad cid)", "recipe add", "recipe add (invalid)",
    "recipe add (missing file)", "render (cached)", "render (YAML path, cached)",
    "render (bad param)", "render (unbound input)", "render (new, fused)", "jobs", "jobs --json",
    "jobs --role volunteer --json", "volunteers", "volunteers --json",
]  # fmt: skip


def assert_same(local: Outcome, remote: Outcome) -> None:
    assert remote.code == local.code, (local, remote)
    assert normalised(remote.stdout) == normalised(local.stdout)
    assert normalised(remote.stderr) == normalised(local.stderr)
    if local.code != 0:  # a refusal is one line, the same both ways
        assert local.stderr.startswith("artdag: error: ") and local.stderr.count("\n") == 1


@pytest.mark.parametrize("case", CASES)
def test_same_with_and_without_daemon(on_results: Results, case: str) -> None:
    local, remote = on_results[case]
    assert_same(local, remote)


@pytest.mark.parametrize("case", list(OFF_COMMANDS))
def test_same_refusal_without_a_market(off_results: Results, case: str) -> None:
    local, remote = off_results[case]
    assert local.code == 1
    assert_same(local, remote)


def test_the_cases_say_what_they_show(on_results: Results) -> None:
    """Not vacuous: renders come from the cache, errors name their cause, the ledger shows."""
    assert "rendered 0 step(s), 1 from cache" in on_results["render (cached)"][0].stderr
    assert "out of range 0..100" in on_results["recipe add (invalid)"][0].stderr
    assert "input 'clip' is not bound" in on_results["render (unbound input)"][0].stderr
    assert "job-requeste" in on_results["jobs"][0].stdout
    assert "total: 7.5 s rendered, 5 accepted, 2 rejected" in on_results["volunteers"][0].stdout
    assert on_results["effects"][0].stdout.count("\n") > 17
    assert "rendered 1 step(s), 0 from cache" in on_results["render (new, fused)"][0].stderr
    assert on_results["provenance --format svg"][0].stdout.startswith("<svg")
