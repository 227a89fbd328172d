"""Recipes, effects as records, parameters, planning and beat detection: the pure parts of the
renderer (no ffmpeg, no store)."""

from __future__ import annotations

import math
import struct
import subprocess
import sys

import pytest

from dag import cid_to_str, parse_cid
from provenance import verify_signed
from renderer import (
    BUILTIN_AUTHOR,
    BUILTIN_EFFECTS,
    RecipeError,
    detect_beats,
    effect_cid,
    effect_record,
    load_recipe_yaml,
    plan_recipe,
    recipe_from_record,
)
from renderer.effect_graphs import beat_slices
from renderer.planner import fuse_chains, needed_steps

SRC = {n: parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku") for n in "abcde"}
SRC_B = parse_cid("bafkreie5ozzbqeozhaghx4xm4gf6wxhhr4ztnjulvdnxsgfecwbb7lyrhq")


def recipe(nodes: str, inputs: str = "[a]", output: str = "n") -> str:
    return f"name: t\ninputs: {inputs}\nnodes:\n{nodes}\noutput: {output}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (recipe("  n: {effect: blur, input: a}"), "node 'n': unknown effect 'blur'"),
        (
            recipe("  n: {effect: glitch, input: m}\n  m: {effect: glitch, input: n}"),
            "a cycle: n -> m -> n",
        ),
        (recipe("  n: {effect: glitch, input: zz}"), "node 'n': input 'zz' is missing"),
        (
            recipe("  n: {effect: glitch, input: a, params: {noise: loud}}"),
            "node 'n': param 'noise': expected an integer, got the string 'loud'",
        ),
        (
            recipe("  n: {effect: glitch, input: a, params: {noise: 101}}"),
            "node 'n': param 'noise': 101 is out of range 0..100",
        ),
        (
            recipe("  n: {effect: speed, input: a, params: {factor: 0.1}}"),
            "node 'n': param 'factor': 0.1 is out of range 0.25..4",
        ),
        (
            recipe("  n: {effect: resize, input: a, params: {width: 100}}"),
            "node 'n': param 'height': resize needs it",
        ),
        (
            recipe("  n: {effect: colour, input: a, params: {glow: 1}}"),
            "node 'n': param 'glow': colour has no such parameter",
        ),
        (recipe("  n: {effect: blend, input: a}"), "node 'n': blend takes 2 input(s)"),
        (
            recipe("  n: {effect: beat-cut, inputs: [a, a]}"),
            "input 'a' gives media but beat-cut needs beats",
        ),
        (
            recipe("  n: {effect: blend, inputs: [a, a], params: {mode: melt}}"),
            "param 'mode': expected one of average",
        ),
        (recipe("  n: {effect: identity, input: a}", output="x"), "output 'x' is not a node"),
        ("name: t\nnodes: [1]\n", "'nodes' must be a non-empty map"),
        ("{{{", "not valid YAML"),
    ],
)
def test_validation_names_the_node_and_parameter(text: str, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe_yaml(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_overrides_are_checked_like_yaml() -> None:
    r = load_recipe_yaml(recipe("  n: {effect: glitch, input: a}"))
    assert r.with_params({"n.noise": 5}).nodes["n"].params == {"noise": 5}
    for key, value, message in [
        ("n.noise", 500, "node 'n': param 'noise': 500 is out of range"),
        ("m.noise", 5, "has no node 'm'"),
        ("noise", 5, "NODE.PARAM"),
        ("n.decay", "x", "param 'decay': expected a number"),
    ]:
        with pytest.raises(RecipeError, match=message):
            r.with_params({key: value})


def test_canonical_record_round_trips_and_coerces_numbers() -> None:
    one = load_recipe_yaml(recipe("  n: {effect: speed, input: a, params: {factor: 2}}"))
    two = load_recipe_yaml(recipe("  n: {effect: speed, input: a, params: {factor: 2.0}}"))
    assert one.to_record() == two.to_record()
    assert one.to_record()["nodes"]["n"]["params"] == {"factor": 2.0}
    assert one.to_record()["nodes"]["n"]["effect"] == effect_cid("speed")
    back = recipe_from_record(one.to_record())
    assert back.to_record() == one.to_record()


@pytest.mark.slow
def test_effect_records_verify_and_their_cids_are_stable() -> None:
    """The same CIDs in a fresh interpreter (and pinned here: a change must be deliberate)."""
    for name in BUILTIN_EFFECTS:
        record = effect_record(name)
        verify_signed(record)
        assert record["author"] == record["signer"] == BUILTIN_AUTHOR.did
    code = "from renderer import effect_cid as e; print(e('glitch'), e('identity'))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert fresh.stdout.split() == [
        cid_to_str(effect_cid("glitch")),
        cid_to_str(effect_cid("identity")),
    ]
    assert cid_to_str(effect_cid("identity")) == (
        "bafyreiblda7o2hzzry2vm4eb26sbsjaxiiotymv73wghkltwv55qheh3ma"
    )


SEQ = recipe(
    "  small: {effect: resize, input: a, params: {width: 320, height: 180}}\n"
    "  seq: {effect: sequence, inputs: [small, b, c, d, e]}\n"
    "  n: {effect: glitch, input: seq}",
    inputs="[a, b, c, d, e]",
)


def test_sequence_is_a_balanced_tree_and_cache_ids_follow_inputs() -> None:
    plan = plan_recipe(load_recipe_yaml(SEQ), SRC)
    joins = [s for s in plan.steps.values() if s.effect.name == "sequence"]
    assert len(joins) == 4 and all(len(s.inputs) == 2 for s in joins)

    def depth(ref: object) -> int:
        if not isinstance(ref, str) or plan.steps[ref].effect.name != "sequence":
            return 0
        return 1 + max(depth(r) for r in plan.steps[ref].inputs)

    assert depth("seq") == math.ceil(math.log2(5))
    # same recipe, same sources: same ids; a changed source changes only what depends on it
    assert plan_recipe(load_recipe_yaml(SEQ), SRC).steps == plan.steps
    other = plan_recipe(load_recipe_yaml(SEQ), {**SRC, "e": SRC_B})
    changed = {i for i in plan.steps if plan.steps[i].cache_id != other.steps[i].cache_id}
    assert changed == {"seq/3", "seq", "n"}
    assert plan.steps["n"].final and plan.steps["n"].format == "h264+aac/mp4"
    assert plan.steps["small"].format == "ffv1+f32le/matroska"


def test_needed_steps_and_fusion() -> None:
    plan = plan_recipe(load_recipe_yaml(SEQ), SRC)
    assert needed_steps(plan, {"seq"}) == {"n"}
    assert needed_steps(plan, {"seq/1"}) == {"seq/2", "seq/3", "seq", "n"}
    jobs = fuse_chains(plan, needed_steps(plan, set()), fuse=True)
    assert jobs == [["small"], ["seq/1"], ["seq/2"], ["seq/3"], ["seq", "n"]]
    assert all(len(j) == 1 for j in fuse_chains(plan, set(plan.steps), fuse=False))


def test_missing_binding_is_refused() -> None:
    with pytest.raises(RecipeError, match="input 'e' is not bound"):
        plan_recipe(load_recipe_yaml(SEQ), {k: v for k, v in SRC.items() if k != "e"})


def _clicks(bpm: float, seconds: float, rate: int = 11025) -> bytes:
    period = 60.0 / bpm
    out = []
    for i in range(int(seconds * rate)):
        t = i / rate
        phase = t % period
        amp = 0.9 * math.sin(2 * math.pi * 1000 * t) * math.exp(-phase * 150) if phase < 0.02 else 0
        out.append(int(amp * 32767))
    return struct.pack(f"<{len(out)}h", *out)


def test_detect_beats_on_a_synthetic_click_track() -> None:
    times = detect_beats(_clicks(120, 3.0))
    assert len(times) == 6
    assert all(t == pytest.approx(i * 0.5, abs=0.02) for i, t in enumerate(times))
    assert detect_beats(b"\x00\x00" * 20000) == []


def test_beat_slices_are_seeded() -> None:
    beats = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    p = {"seed": 5, "slices": 0, "shuffle": True}
    assert beat_slices(beats, 3.0, p) == beat_slices(beats, 3.0, p)
    assert sorted(beat_slices(beats, 3.0, p)) == [(b, b + 0.5) for b in beats]
    assert beat_slices(beats, 3.0, {**p, "shuffle": False})[0] == (0.0, 0.5)
    assert len(beat_slices(beats, 3.0, {**p, "slices": 2})) == 2
