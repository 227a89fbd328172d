"""Rendering recipes end to end (real ffmpeg, real store): determinism by content key, the step
cache (zero steps on a re-run; only what is downstream of a change), fused chains, and the
signed provenance of every output."""

from __future__ import annotations

from pathlib import Path

import pytest

import dag
from dag import cid_to_str
from provenance import verify_signed
from renderer import effect_cid, ffmpeg_version, load_recipe_yaml
from tests.harness.renderer_fixtures import MediaSet, add, probe_stored, render_service

pytestmark = pytest.mark.ffmpeg

RECIPE = """
name: two-clips
inputs: [a, b]
nodes:
  small: {effect: resize, input: a, params: {width: 160, height: 90}}
  tint: {effect: colour, input: small, params: {hue: 30}}
  red: {effect: resize, input: b, params: {width: 160, height: 90}}
  joined: {effect: sequence, inputs: [tint, red, small]}
  out: {effect: glitch, input: joined, params: {noise: 20, seed: 1}}
output: out
"""
# steps: small, tint, red, joined/1 (tint+red), joined (joined/1+small), out


async def test_step_cache_renders_only_what_changed(tmp_path: Path, media: MediaSet) -> None:
    async with render_service(tmp_path) as s:
        ins = {"a": await add(s, media.clip), "b": await add(s, media.red)}
        recipe = str(await s.add_recipe(load_recipe_yaml(RECIPE)))
        first = await s.render(recipe, ins)
        assert first.result.rendered == ["small", "tint", "red", "joined/1", "joined", "out"]
        assert first.cached == 0

        again = await s.render(recipe, ins)
        assert (again.rendered, again.cached) == (0, 6)
        assert again.output == first.output and again.content_key == first.content_key

        # tint is upstream of joined/1, joined and out; small and red are untouched
        changed = await s.render(recipe, ins, {"tint.hue": "-45"})
        assert changed.result.rendered == ["tint", "joined/1", "joined", "out"]
        assert sorted(changed.result.cached) == ["red", "small"]
        assert changed.content_key != first.content_key

        last = await s.render(recipe, ins, {"out.noise": "35"})
        assert last.result.rendered == ["out"] and last.cached == 5

        info = await probe_stored(s, first.output, tmp_path)
        assert info.duration == pytest.approx(3.0, abs=0.1)
        assert (info.video.width, info.video.height) == (160, 90)


async def test_rendering_twice_gives_the_same_content_key(tmp_path: Path, media: MediaSet) -> None:
    """Two nodes with separate stores and caches (so everything really renders twice)."""
    keys = []
    for where in ("one", "two"):
        async with render_service(tmp_path / where) as s:
            ins = {"a": await add(s, media.clip), "b": await add(s, media.red)}
            outcome = await s.render(str(await s.add_recipe(load_recipe_yaml(RECIPE))), ins)
            assert outcome.rendered == 6
            keys.append((outcome.content_key, outcome.output))
    assert keys[0] == keys[1]


async def test_fused_chain_matches_step_by_step(tmp_path: Path, media: MediaSet) -> None:
    chain = """
name: chain
inputs: [a]
nodes:
  small: {effect: resize, input: a, params: {width: 192, height: 108}}
  tint: {effect: colour, input: small, params: {saturation: 1.5}}
  broken: {effect: glitch, input: tint, params: {noise: 25, decay: 0.5}}
  out: {effect: fade, input: broken, params: {fade_in: 0.3, fade_out: 0.4, video: true}}
output: out
"""
    async with render_service(tmp_path / "stepwise") as s:
        clip = await add(s, media.clip)
        stepwise = await s.render(str(await s.add_recipe(load_recipe_yaml(chain))), {"a": clip})
    async with render_service(tmp_path / "fused") as s:
        clip = await add(s, media.clip)
        recipe = str(await s.add_recipe(load_recipe_yaml(chain)))
        fused = await s.render(recipe, {"a": clip}, fuse=True)
        assert fused.rendered == 4 and len(fused.result.receipts) == 1  # one ffmpeg run
        receipt = dag.decode_dagcbor(await s.store.get(fused.result.receipts[0]))
        steps = fused.result.plan.steps
        assert receipt["fused"] == [steps[i].cache_id for i in ("small", "tint", "broken")]
        assert receipt["cache_id"] == steps["out"].cache_id
        assert (await s.render(recipe, {"a": clip}, fuse=True)).rendered == 0
    # pinned formats between steps and lossless intermediates: the same pictures and sound
    assert stepwise.rendered == 4 and fused.content_key == stepwise.content_key


async def test_provenance_names_everything_and_verifies(tmp_path: Path, media: MediaSet) -> None:
    async with render_service(tmp_path) as s:
        ins = {"a": await add(s, media.clip), "b": await add(s, media.red)}
        recipe = await s.add_recipe(load_recipe_yaml(RECIPE))
        outcome = await s.render(str(recipe), ins, {"out.seed": "9"})
        record = dag.decode_dagcbor(await s.store.get(outcome.provenance))
        verify_signed(record)
        assert record["type"] == "provenance" and record["output"] == outcome.output
        assert record["recipe"] == recipe
        assert record["inputs"] == [ins["a"], ins["b"]]
        assert set(record["effects"]) == {
            effect_cid(n) for n in ("resize", "colour", "sequence", "glitch")
        }
        assert record["parameters"] == {"inputs": ins, "overrides": {"out.seed": 9}}
        assert record["software"]["ffmpeg"] == ffmpeg_version()[:128]
        assert record["software"]["artdag"] and record["node"]
        assert record["renderer"] == record["signer"] == s.identity.did
        assert len(record["steps"]) == 6
        for receipt_cid in record["steps"]:
            receipt = dag.decode_dagcbor(await s.store.get(receipt_cid))
            verify_signed(receipt)
            assert receipt["type"] == "receipt" and await s.store.has(receipt["output"])
        for effect in record["effects"]:  # the effect records are in the store, verifiable
            verify_signed(dag.decode_dagcbor(await s.store.get(effect)))
        lines = await s.lineage_lines(outcome.output)
        text = "\n".join(lines)
        assert lines[0].startswith(cid_to_str(outcome.output))
        assert "recipe 'two-clips'" in text and "glitch r1" in text and "sequence r1" in text
        assert f"a {cid_to_str(ins['a'])}" in text and "out.seed=9" in text
        assert "ffmpeg" in text and s.identity.did in text
