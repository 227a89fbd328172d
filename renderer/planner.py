"""Planning, as in Art DAG: a recipe bound to inputs becomes steps, each with a cache id.

A step's cache id is the CID of the DAG-CBOR map ``{effect, config, inputs}``: the effect
record's CID (it names the operation and its release), the canonical config (the effective
parameters, defaults filled in, plus the output format) and the input ids, where a source
asset's id is its content CID and an intermediate's id is the cache id of the step that makes
it. Equal ids mean equal work, on any machine, so a step cache (cache id -> output CID) lets a
re-run render only what changed.

Receipts and provenance link cache ids (DAG-CBOR tag 42), so for a pinned record's DAG to be
whole (``artdag verify``, a recursive pin in Kubo, a followed creator's repo fetched by a
gateway) the map behind each cache id must be a stored block too: :func:`plan_key_blocks`
gives them, and whoever plans a render stores them before any receipt links them.

A ``sequence`` of N clips becomes a balanced binary tree of two-clip joins (depth log2 N), so
independent joins can run in parallel and changing one clip re-renders only its path to the
root.

Everything here is pure: no I/O, no ffmpeg.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dag import CID, Block, cid_to_str, record_block

from .effects import Effect, effect_by_name, effect_cid
from .recipes import Recipe, RecipeError

__all__ = [
    "DELIVERY_FORMAT",
    "INTERMEDIATE_FORMAT",
    "Plan",
    "Step",
    "fuse_chains",
    "needed_steps",
    "plan_key_blocks",
    "plan_recipe",
]

INTERMEDIATE_FORMAT = "ffv1+f32le/matroska"  # lossless, fast, deterministic
DELIVERY_FORMAT = "h264+aac/mp4"  # what browsers play


@dataclass(frozen=True)
class Step:
    id: str
    node: str  # the recipe node this step comes from
    effect: Effect
    params: Mapping[str, Any]  # effective parameters
    inputs: tuple[str | CID, ...]  # step ids, or content CIDs of source assets
    cache_id: CID
    final: bool = False

    @property
    def format(self) -> str:
        return output_format(self.effect, self.final)


def output_format(effect: Effect, final: bool) -> str:
    """What a step writes: the delivery format for the recipe's output, else intermediates."""
    if effect.output != "media" or effect.runs != "graph":
        return effect.output
    return DELIVERY_FORMAT if final else INTERMEDIATE_FORMAT


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    sources: Mapping[str, CID]  # recipe input name -> content CID
    steps: Mapping[str, Step]  # in an order where inputs come first
    output: str  # id of the step whose result is the recipe's output

    def consumers(self, step_id: str) -> list[str]:
        return [s.id for s in self.steps.values() if step_id in s.inputs]


def cache_key_block(
    effect: Effect, params: Mapping[str, Any], fmt: str, input_ids: list[CID]
) -> Block:
    """The DAG-CBOR map ``{effect, config, inputs}`` whose CID is the step's cache id."""
    key = {
        "effect": effect_cid(effect.name),
        "config": {"params": dict(params), "format": fmt},
        "inputs": input_ids,
    }
    return record_block(key)


def cache_id_of(effect: Effect, params: Mapping[str, Any], fmt: str, input_ids: list[CID]) -> CID:
    """hash(operation, canonical config, input ids) as a dag-cbor CID."""
    return cache_key_block(effect, params, fmt, input_ids).cid


def plan_key_blocks(plan: Plan) -> list[Block]:
    """The block behind every step's cache id, inputs first. Each links the effect record,
    source CIDs and the key blocks of the steps it reads, so with the effect records and the
    sources stored these make every cache id link of the plan resolve."""
    blocks = []
    for step in plan.steps.values():
        ids = [ref if isinstance(ref, CID) else plan.steps[ref].cache_id for ref in step.inputs]
        block = cache_key_block(step.effect, step.params, step.format, ids)
        if block.cid != step.cache_id:  # the planner made it from these same parts
            raise AssertionError(f"step {step.id!r}: cache id does not match its key block")
        blocks.append(block)
    return blocks


def plan_recipe(recipe: Recipe, sources: Mapping[str, CID]) -> Plan:
    """The steps of ``recipe`` with its inputs bound to content CIDs."""
    missing = [name for name in recipe.inputs if name not in sources]
    if missing:
        raise RecipeError(
            f"recipe {recipe.name!r}: input {missing[0]!r} is not bound (use --input "
            f"{missing[0]}=CID)"
        )
    extra = [name for name in sources if name not in recipe.inputs]
    if extra:
        raise RecipeError(f"recipe {recipe.name!r} has no input {extra[0]!r}")
    steps: dict[str, Step] = {}
    made: dict[str, str | CID] = {name: sources[name] for name in recipe.inputs}

    def ident(ref: str | CID) -> CID:
        return ref if isinstance(ref, CID) else steps[ref].cache_id

    def add(step_id: str, node: str, effect: Effect, params: Mapping[str, Any],
            inputs: list[str | CID]) -> str:  # fmt: skip
        final = step_id == recipe.output
        fmt = output_format(effect, final)
        cid = cache_id_of(effect, params, fmt, [ident(r) for r in inputs])
        steps[step_id] = Step(step_id, node, effect, params, tuple(inputs), cid, final)
        return step_id

    for node_id in _topological(recipe):
        node = recipe.nodes[node_id]
        refs = [made[r] for r in node.inputs]
        params = node.effective_params()
        if node.effect.name == "sequence":
            made[node_id] = _balanced(node_id, refs, params, add)
        else:
            made[node_id] = add(node_id, node_id, node.effect, params, refs)
    output = made[recipe.output]
    if isinstance(output, CID):  # a sequence of one source: nothing to render
        output = add(recipe.output, recipe.output, effect_by_name("identity"), {}, [output])
    return Plan(recipe, dict(sources), steps, output)


def _balanced(
    node_id: str, refs: list[str | CID], params: Mapping[str, Any], add: Any
) -> str | CID:
    """Join ``refs`` as a balanced binary tree; the root step gets the node's id."""
    effect = effect_by_name("sequence")
    counter = iter(range(1, 1 << 20))

    def build(part: list[str | CID], root: bool) -> str | CID:
        if len(part) == 1:
            return part[0]
        middle = (len(part) + 1) // 2
        left, right = build(part[:middle], False), build(part[middle:], False)
        step_id = node_id if root else f"{node_id}/{next(counter)}"
        return str(add(step_id, node_id, effect, params, [left, right]))

    if len(refs) == 1:
        return str(add(node_id, node_id, effect_by_name("identity"), {}, refs))
    return build(refs, True)


def _topological(recipe: Recipe) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for ref in recipe.nodes[node_id].inputs:
            if ref in recipe.nodes:
                visit(ref)
        order.append(node_id)

    visit(recipe.output)  # only what the output needs
    return order


def needed_steps(plan: Plan, cached: set[str]) -> set[str]:
    """Steps to run: not cached, and needed by the output through uncached steps only."""
    need: set[str] = set()

    def visit(step_id: str) -> None:
        if step_id in need or step_id in cached:
            return
        need.add(step_id)
        for ref in plan.steps[step_id].inputs:
            if isinstance(ref, str):
                visit(ref)

    visit(plan.output)
    return need


def fuse_chains(plan: Plan, need: set[str], fuse: bool) -> list[list[str]]:
    """Group the steps to run into jobs (one ffmpeg process each), inputs first.

    With ``fuse``, a step joins its only input's job when both are filter-graph steps and
    nothing else reads that input: a linear chain then runs as one graph with no
    intermediate file (its interior steps are not materialised, so not cached).
    """
    jobs: list[list[str]] = []
    job_of: dict[str, list[str]] = {}
    for step_id in plan.steps:
        if step_id not in need:
            continue
        step = plan.steps[step_id]
        prev = step.inputs[0] if len(step.inputs) == 1 else None
        if (
            fuse
            and isinstance(prev, str)
            and prev in job_of
            and job_of[prev][-1] == prev
            and step.effect.runs == "graph"
            and plan.steps[prev].effect.runs == "graph"
            and plan.consumers(prev) == [step_id]
        ):
            job = job_of[prev]
            job.append(step_id)
        else:
            job = [step_id]
            jobs.append(job)
        job_of[step_id] = job
    return jobs


def describe(plan: Plan) -> str:
    """One line per step: id, operation, cache id (for logs and tests)."""
    lines = []
    for step in plan.steps.values():
        ins = ", ".join(r if isinstance(r, str) else cid_to_str(r)[:16] for r in step.inputs)
        lines.append(f"{step.id}: {step.effect.name}({ins}) -> {cid_to_str(step.cache_id)}")
    return "\n".join(lines)
