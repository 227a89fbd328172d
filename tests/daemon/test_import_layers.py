"""The layer contracts in pyproject.toml ([tool.importlinter]) catch a forbidden import.

Each test copies the seven packages and pyproject.toml into a temporary directory and runs the
real `lint-imports` there. import-linter puts its working directory first on sys.path (and
PYTHONPATH names it too), so grimp reads the copies rather than the editable install; the probe
module exists only in the copy, so a failure proves the copy was the one checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PACKAGES = ("dag", "provenance", "p2p", "renderer", "activitypub_bridge", "webui", "daemon")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def project_root() -> Path:
    """The directory holding pyproject.toml, wherever this test file sits under tests/."""
    here = Path(__file__).resolve().parent
    return next(p for p in (here, *here.parents) if (p / "pyproject.toml").is_file())


ROOT = project_root()


def contract_names() -> dict[str, str]:
    """Contract id -> name, as pyproject.toml declares them."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    return {c["id"]: c["name"] for c in contracts}


def copy_project(dest: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def flat(text: str) -> str:
    """The output with its line wrapping undone (long contract names wrap at 80 columns)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("layers")
    copy_project(dest)
    return dest


def test_the_project_keeps_every_contract(project_copy: Path) -> None:
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    out = flat(result.stdout)
    for name in contract_names().values():
        assert f"{name} KEPT" in out


@pytest.mark.parametrize(
    ("probe", "imports", "contract_id", "chain"),
    [
        ("dag/layer_probe.py", "import daemon", "layers", "dag.layer_probe -> daemon"),
        (
            "webui/layer_probe.py",
            "import activitypub_bridge",
            "layers",
            "webui.layer_probe -> activitypub_bridge",
        ),
        (
            "daemon/core/layer_probe.py",
            "import daemon.cli",
            "daemon-core",
            "daemon.core.layer_probe -> daemon.cli",
        ),
        (
            "daemon/http/layer_probe.py",
            "import daemon.cli",
            "daemon-adapters",
            "daemon.http.layer_probe -> daemon.cli",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, probe: str, imports: str, contract_id: str, chain: str
) -> None:
    copy_project(tmp_path)
    (tmp_path / probe).write_text(f'"""Imports across a layer."""\n\n{imports}\n')
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr
    out = flat(result.stdout)
    assert f"{contract_names()[contract_id]} BROKEN" in out, result.stdout
    assert chain in out, result.stdout
