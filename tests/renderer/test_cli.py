"""The renderer's CLI commands, run as the real ``artdag`` subprocess in a temporary home:
effects, recipe add, render (progress, counts, output CID last), provenance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from renderer import BUILTIN_EFFECTS
from tests.harness.cli_helpers import Home
from tests.harness.media import make_video

pytestmark = [pytest.mark.cli, pytest.mark.ffmpeg]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def one_line_error(proc: object) -> str:
    err = proc.stderr.decode().strip()  # type: ignore[attr-defined]
    assert proc.returncode == 1, err  # type: ignore[attr-defined]
    assert "\n" not in err and err.startswith("artdag: error: ") and "Traceback" not in err, err
    return err


def test_effects_lists_every_builtin(home: Home) -> None:
    out = home.out("effects", "--cids")
    for name in BUILTIN_EFFECTS:
        assert f"\n{name} " in "\n" + out
    assert "noise" in out and "int 0..100 (default 30)" in out


def test_recipe_render_and_provenance(home: Home, tmp_path: Path) -> None:
    clip = home.last_line("add", str(make_video(tmp_path / "clip.mkv", seconds=1)))
    recipe = home.last_line("recipe", "add", str(EXAMPLES / "single-effect.yaml"))
    assert recipe.startswith("bafyrei")
    assert home.last_line("recipe", "add", str(EXAMPLES / "single-effect.yaml")) == recipe

    first = home.run("render", recipe, "--input", f"clip={clip}")
    output = first.stdout.decode().strip().splitlines()[-1]
    assert output.startswith("bafk") or output.startswith("bafy")
    assert re.search(r"rendered 1 step\(s\), 0 from cache, 1[2-4] frames", first.stderr.decode())
    second = home.run("render", recipe, "--input", f"clip={clip}")
    assert second.stdout.decode().strip().splitlines()[-1] == output
    assert "rendered 0 step(s), 1 from cache" in second.stderr.decode()
    # the output is one of the node's assets now, playable and tagged as a render
    listed = home.out("assets", "--tag", "render")
    assert output in listed and "double-speed.mp4" in listed

    # a YAML path works as well, and --param overrides a node's parameter
    slower = home.run(
        "render", str(EXAMPLES / "single-effect.yaml"), "--input", f"clip={clip}",
        "--param", "fast.factor=0.5",
    )  # fmt: skip
    assert slower.stdout.decode().strip().splitlines()[-1] != output

    tree = home.out("provenance", output)
    lines = tree.splitlines()
    assert lines[0].startswith(output) and "clip.mkv" not in lines[0]
    assert "recipe 'double-speed'" in tree and "speed r1" in tree
    assert f"clip {clip} (asset 'clip.mkv'" in tree and "ffmpeg" in tree
    assert "└── " in tree


def test_errors_are_one_line(home: Home, tmp_path: Path) -> None:
    clip = home.last_line("add", str(make_video(tmp_path / "clip.mkv", seconds=1)))
    bad = tmp_path / "bad.yaml"
    node = "  n: {effect: glitch, input: a, params: {noise: 1000}}"
    bad.write_text(f"name: x\ninputs: [a]\nnodes:\n{node}\noutput: n\n")
    err = one_line_error(home.run("recipe", "add", str(bad), check=False))
    assert "node 'n': param 'noise': 1000 is out of range 0..100" in err
    single = str(EXAMPLES / "single-effect.yaml")
    err = one_line_error(home.run("render", single, "--input", f"clip={clip}", "--param",
                                  "fast.factor=fast", check=False))  # fmt: skip
    assert "node 'fast': param 'factor': expected a number" in err
    err = one_line_error(home.run("render", single, check=False))
    assert "input 'clip' is not bound" in err
