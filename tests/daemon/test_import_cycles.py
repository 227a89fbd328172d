"""The acyclic_siblings contract in pyproject.toml ([tool.importlinter], id acyclic)
catches an import cycle between sibling modules of a library package, also one hidden inside a
function (as dag.blockstore's imports of dag.completeness and dag.gc were before issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.test_import_layers import contract_names, copy_project, flat, lint_imports


@pytest.mark.parametrize(
    ("module", "added", "package"),
    [
        # dag.walk imports dag.links: the reverse import closes a cycle
        ("dag/links.py", "import dag.walk  # noqa\n", "dag"),
        (
            "renderer/media_info.py",
            "\n\ndef _late() -> None:\n    from renderer import probe  # noqa\n",
            "renderer",
        ),
    ],
)
def test_a_sibling_cycle_breaks_the_contract(
    tmp_path: Path, module: str, added: str, package: str
) -> None:
    copy_project(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + added)
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr
    out = flat(result.stdout)
    assert f"{contract_names()['acyclic']} BROKEN" in out, result.stdout
    assert f"No cycles are allowed in {package}." in out, result.stdout
