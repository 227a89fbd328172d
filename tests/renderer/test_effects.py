"""Every built-in effect renders on generated media (real ffmpeg in the sandbox) and its output
probes as expected. Each test renders a one-node recipe, so its output is the delivery format
(H.264 + AAC in MP4)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import dag
from daemon.core.render.service import RenderService
from dag import CID
from renderer import BUILTIN_EFFECTS, load_recipe_yaml, read_beats_record
from renderer.effect_graphs import beat_slices
from tests.harness.renderer_fixtures import MediaSet, add, probe_stored, render_service

pytestmark = pytest.mark.ffmpeg

TESTED: set[str] = set()


async def one(
    service: RenderService, effect: str, inputs: dict[str, CID], params: str = "{}"
) -> CID:
    """Render a recipe of one ``effect`` node over ``inputs`` (in order); its output CID."""
    TESTED.add(effect)
    names = list(inputs)
    text = (
        f"name: {effect}-test\ninputs: [{', '.join(names)}]\nnodes:\n"
        f"  out: {{effect: {effect}, inputs: [{', '.join(names)}], params: {params}}}\n"
        "output: out\n"
    )
    recipe_cid = await service.add_recipe(load_recipe_yaml(text))
    outcome = await service.render(str(recipe_cid), inputs)
    return outcome.output


async def test_geometry_effects(tmp_path: Path, media: MediaSet) -> None:
    async with render_service(tmp_path) as s:
        clip = await add(s, media.clip)
        info = await probe_stored(
            s, await one(s, "resize", {"a": clip}, "{width: 160, height: 96}"), tmp_path
        )
        assert (info.video.width, info.video.height) == (160, 96)
        assert info.video.codec == "h264" and info.audio is not None and info.audio.codec == "aac"
        info = await probe_stored(s, await one(s, "rotate", {"a": clip}, "{degrees: 90}"), tmp_path)
        assert (info.video.width, info.video.height) == (180, 320)
        info = await probe_stored(s, await one(s, "rotate", {"a": clip}, "{degrees: 15}"), tmp_path)
        assert (info.video.width, info.video.height) == (320, 180)
        crop = "{x: 10, y: 20, width: 100, height: 50}"
        info = await probe_stored(s, await one(s, "crop", {"a": clip}, crop), tmp_path)
        assert (info.video.width, info.video.height) == (100, 50)


async def test_time_effects(tmp_path: Path, media: MediaSet) -> None:
    async with render_service(tmp_path) as s:
        clip = await add(s, media.clip)
        seg = await one(s, "segment", {"a": clip}, "{start: 0.2, duration: 0.6}")
        info = await probe_stored(s, seg, tmp_path)
        assert info.duration == pytest.approx(0.6, abs=0.08)
        fast = await probe_stored(s, await one(s, "speed", {"a": clip}, "{factor: 2}"), tmp_path)
        assert fast.duration == pytest.approx(0.5, abs=0.08)  # 1 s at twice the speed
        red = await add(s, media.red)
        seq = await one(s, "sequence", {"a": clip, "b": red, "c": clip})
        info = await probe_stored(s, seq, tmp_path)
        assert info.duration == pytest.approx(3.0, abs=0.1)
        assert (info.video.width, info.video.height) == (320, 180)  # the first clip's size


async def test_picture_and_sound_effects_change_content(tmp_path: Path, media: MediaSet) -> None:
    async with render_service(tmp_path) as s:
        clip = await add(s, media.clip)
        red = await add(s, media.red)
        keys = {}
        for effect, inputs, params in [
            ("colour", {"a": clip}, "{hue: 90, saturation: 2.0, brightness: 0.1}"),
            ("glitch", {"a": clip}, "{noise: 60, shift: 8, decay: 0.8, seed: 4}"),
            ("gain", {"a": clip}, "{db: -12}"),
            ("fade", {"a": clip}, "{fade_in: 0.3, fade_out: 0.3, video: true}"),
            ("blend", {"a": clip, "b": red}, "{mode: screen, opacity: 0.7}"),
            ("layer", {"a": clip, "b": red}, "{x: 20, y: 10, scale: 0.5}"),
            ("identity", {"a": clip}, "{}"),
        ]:
            out = await one(s, effect, inputs, params)
            keys[effect] = out
            info = await probe_stored(s, out, tmp_path)
            assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
        # identity returns its input as is; the others make new content
        assert keys["identity"] == clip
        outs = {v for k, v in keys.items() if k != "identity"}
        assert len(outs) == 6 and clip not in outs


async def test_mux_dog_and_beats(tmp_path: Path, media: MediaSet) -> None:
    async with render_service(tmp_path) as s:
        silent, clicks, red = [await add(s, p) for p in (media.silent, media.clicks, media.red)]
        muxed = await probe_stored(s, await one(s, "mux", {"v": silent, "m": clicks}), tmp_path)
        assert muxed.video is not None and muxed.audio is not None
        assert muxed.duration == pytest.approx(1.0, abs=0.1)  # cut to the video
        assert await one(s, "dog", {"a": silent}, f"{{asset: {red}}}") == red

        beats_cid = await one(s, "analyze-beats", {"m": clicks})
        assert beats_cid.codec.name == "dag-cbor"
        times = read_beats_record(dag.decode_dagcbor(await s.store.get(beats_cid)))
        assert len(times) == 4  # 120 bpm over 2 s
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g == pytest.approx(0.5, abs=0.02) for g in gaps)


async def test_beat_cut_is_seeded(tmp_path: Path, media: MediaSet) -> None:
    """Same seed, same content key; another seed, another order (so another key)."""
    text = """
name: cut
inputs: [video, music]
nodes:
  beats: {effect: analyze-beats, input: music}
  out: {effect: beat-cut, inputs: [video, beats], params: {seed: 1}}
output: out
"""
    TESTED.add("beat-cut")
    async with render_service(tmp_path) as s:
        ins = {"video": await add(s, media.clip), "music": await add(s, media.fast_clicks)}
        recipe = str(await s.add_recipe(load_recipe_yaml(text)))
        first = await s.render(recipe, ins)
    async with render_service(tmp_path / "again") as s2:  # fresh cache: really renders again
        ins2 = {"video": await add(s2, media.clip), "music": await add(s2, media.fast_clicks)}
        recipe2 = str(await s2.add_recipe(load_recipe_yaml(text)))
        again = await s2.render(recipe2, ins2)
        other = await s2.render(recipe2, ins2, {"out.seed": "2"})
    assert again.rendered == 2 and first.content_key == again.content_key
    assert (other.rendered, other.cached) == (1, 1)  # the beats are reused
    assert other.content_key != first.content_key
    beats = [0.0, 0.25, 0.5, 0.75]
    one_ = {"seed": 1, "slices": 0, "shuffle": True}
    two = {"seed": 2, "slices": 0, "shuffle": True}
    assert sorted(beat_slices(beats, 1.0, one_)) == sorted(beat_slices(beats, 1.0, two))
    assert beat_slices(beats, 1.0, one_) != beat_slices(beats, 1.0, two)


def test_every_builtin_effect_was_rendered() -> None:
    """Runs last in this module: every built-in effect appeared in a test above."""
    assert set(BUILTIN_EFFECTS) <= TESTED | {"sequence"}, set(BUILTIN_EFFECTS) - TESTED
