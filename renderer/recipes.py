"""Recipes: the YAML authors write, the canonical DAG-CBOR record the daemon stores, validation.

A recipe is a DAG of effect applications (nodes) over named inputs bound at render time; one
node is named the output. The YAML format (documented in docs/recipes.md)::

    name: small-glitch
    inputs: [clip]
    nodes:
      small: {effect: resize, input: clip, params: {width: 320, height: 180}}
      broken: {effect: glitch, input: small, params: {noise: 40, seed: 7}}
    output: broken

Validation refuses, with a one-line :class:`RecipeError` naming the node and parameter: an
unknown effect, a cycle, an input that is neither a recipe input nor a node, the wrong number or
kind of inputs, an unknown or missing parameter, a parameter of the wrong type or out of range.
The same checks run on a recipe record fetched by CID, since records come from anyone.

YAML from users is bounded before it is built into Python values: at most
:data:`MAX_YAML_BYTES`, collections nested at most :data:`MAX_YAML_DEPTH` deep and
:data:`MAX_YAML_NODES` nodes once aliases are expanded, checked on PyYAML's event stream
(which does not recurse), because the safe loader's composer recurses once per level (5,000
levels end in ``RecursionError``) and aliases of aliases make a few lines expand a billionfold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from dag import CID
from provenance import RecordError, validate_record

from .effects import MEDIA, Effect, UnknownEffect, effect_by_cid, effect_by_name, effect_cid
from .errors import RenderError
from .params import ParamError, coerce_param

__all__ = ["Recipe", "RecipeError", "RecipeNode", "load_recipe_yaml", "recipe_from_record"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TOP_KEYS = {"name", "description", "inputs", "nodes", "output"}
_NODE_KEYS = {"effect", "input", "inputs", "params"}
MAX_YAML_BYTES = 256 * 1024
MAX_YAML_DEPTH = 64  # a recipe nests four levels (recipe > nodes > node > params)
MAX_YAML_NODES = 100_000  # scalars and collections, aliases counted as what they repeat


class RecipeError(RenderError, ValueError):
    """A recipe that cannot be rendered; the message names the node and parameter."""


@dataclass(frozen=True)
class RecipeNode:
    id: str
    effect: Effect
    inputs: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)  # as given (canonical values)

    @property
    def effect_cid(self) -> CID:
        return effect_cid(self.effect.name)

    def effective_params(self) -> dict[str, Any]:
        return {**self.effect.defaults(), **self.params}


@dataclass(frozen=True)
class Recipe:
    name: str
    inputs: tuple[str, ...]
    nodes: Mapping[str, RecipeNode]
    output: str
    description: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The canonical unsigned ``recipe`` record."""
        nodes: dict[str, Any] = {}
        for node in self.nodes.values():
            entry: dict[str, Any] = {"effect": node.effect_cid, "inputs": list(node.inputs)}
            if node.params:
                entry["params"] = dict(node.params)
            nodes[node.id] = entry
        record: dict[str, Any] = {
            "type": "recipe",
            "version": 1,
            "name": self.name,
            "inputs": list(self.inputs),
            "nodes": nodes,
            "output": self.output,
        }
        if self.description:
            record["description"] = self.description
        validate_record(record)
        return record

    def with_params(self, overrides: Mapping[str, Any]) -> Recipe:
        """A copy with ``{"node.param": value}`` overrides applied (values coerced and checked)."""
        nodes = dict(self.nodes)
        for key, value in overrides.items():
            node_id, dot, param = key.partition(".")
            if not dot or not param:
                raise RecipeError(f"parameter {key!r}: write it as NODE.PARAM (e.g. small.width)")
            if node_id not in nodes:
                raise RecipeError(
                    f"parameter {key!r}: recipe {self.name!r} has no node {node_id!r}"
                )
            node = nodes[node_id]
            params = dict(node.params)
            params[param] = _coerce(node.id, node.effect, param, value)
            nodes[node_id] = replace(node, params=params)
        return replace(self, nodes=nodes)


def _coerce(node_id: str, effect: Effect, name: str, value: Any) -> Any:
    spec = effect.params.get(name)
    if spec is None:
        known = ", ".join(effect.params) or "none"
        raise RecipeError(
            f"node {node_id!r}: param {name!r}: {effect.name} has no such parameter "
            f"(parameters: {known})"
        )
    try:
        return coerce_param(spec, value)
    except ParamError as exc:
        raise RecipeError(f"node {node_id!r}: param {name!r}: {exc}") from None


def _text(value: Any, where: str, *, pattern: re.Pattern[str] | None = _ID) -> str:
    if not isinstance(value, str) or not value:
        raise RecipeError(f"{where}: expected a name, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise RecipeError(f"{where}: {value!r} is not a valid name (letters, digits, - and _)")
    return value


def _resolve_effect(node_id: str, ref: Any) -> Effect:
    if isinstance(ref, CID):
        try:
            return effect_by_cid(ref)
        except UnknownEffect as exc:
            raise RecipeError(f"node {node_id!r}: {exc}") from None
    if not isinstance(ref, str) or not ref:
        raise RecipeError(f"node {node_id!r}: 'effect' must name an effect, got {ref!r}")
    try:
        return effect_by_name(ref)
    except UnknownEffect as exc:
        try:
            return effect_by_cid(ref)
        except Exception:
            raise RecipeError(f"node {node_id!r}: {exc}") from None


def _build(
    name: str,
    inputs: list[str],
    raw_nodes: Mapping[str, tuple[Any, list[Any], Mapping[str, Any]]],
    output: Any,
    description: str | None,
) -> Recipe:
    if len(set(inputs)) != len(inputs):
        raise RecipeError(f"recipe {name!r}: an input is named twice")
    nodes: dict[str, RecipeNode] = {}
    for node_id, (effect_ref, node_inputs, params) in raw_nodes.items():
        _text(node_id, "node id")
        if node_id in inputs:
            raise RecipeError(f"node {node_id!r}: has the same name as a recipe input")
        effect = _resolve_effect(node_id, effect_ref)
        refs = tuple(_text(i, f"node {node_id!r}: input") for i in node_inputs)
        _check_arity(node_id, effect, refs)
        if not isinstance(params, Mapping):
            raise RecipeError(f"node {node_id!r}: 'params' must be a map")
        canonical = {k: _coerce(node_id, effect, str(k), v) for k, v in params.items()}
        for pname, spec in effect.params.items():
            if spec.required and pname not in canonical:
                raise RecipeError(
                    f"node {node_id!r}: param {pname!r}: {effect.name} needs it ({spec.doc})"
                )
        nodes[node_id] = RecipeNode(node_id, effect, refs, canonical)
    for node in nodes.values():
        for position, ref in enumerate(node.inputs):
            if ref not in nodes and ref not in inputs:
                raise RecipeError(
                    f"node {node.id!r}: input {ref!r} is missing: neither a recipe input "
                    f"({', '.join(inputs) or 'none'}) nor a node"
                )
            want = node.effect.inputs[min(position, len(node.effect.inputs) - 1)][1]
            have = nodes[ref].effect.output if ref in nodes else MEDIA
            if want != have:
                raise RecipeError(
                    f"node {node.id!r}: input {ref!r} gives {have} but {node.effect.name} "
                    f"needs {want} there"
                )
    _check_acyclic(nodes)
    output = _text(output, "recipe output")
    if output not in nodes:
        raise RecipeError(f"recipe {name!r}: output {output!r} is not a node")
    return Recipe(name, tuple(inputs), nodes, output, description)


def _check_arity(node_id: str, effect: Effect, refs: tuple[str, ...]) -> None:
    want = len(effect.inputs)
    names = ", ".join(n for n, _ in effect.inputs)
    if effect.variadic and len(refs) >= want:
        return
    if len(refs) != want:
        more = " or more" if effect.variadic else ""
        raise RecipeError(
            f"node {node_id!r}: {effect.name} takes {want}{more} input(s) ({names}), "
            f"got {len(refs)}"
        )


def _check_acyclic(nodes: Mapping[str, RecipeNode]) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node_id: str, path: list[str]) -> None:
        state[node_id] = 1
        for ref in nodes[node_id].inputs:
            if ref not in nodes:
                continue
            if state.get(ref) == 1:
                loop = [*path[path.index(ref) :], ref] if ref in path else [node_id, ref]
                raise RecipeError(f"node {ref!r}: a cycle: {' -> '.join(loop)}")
            if ref not in state:
                visit(ref, [*path, ref])
        state[node_id] = 2

    for node_id in nodes:
        if node_id not in state:
            visit(node_id, [node_id])


def _check_yaml_shape(text: str | bytes) -> None:
    """:class:`RecipeError` if ``text`` nests deeper than :data:`MAX_YAML_DEPTH` or holds more
    than :data:`MAX_YAML_NODES` nodes with its aliases expanded; read as events, so nothing
    here recurses or expands."""
    open_sizes: list[list[Any]] = []  # [anchor, nodes so far] per open collection
    anchored: dict[str, int] = {}  # anchor -> nodes it stands for
    total = 0

    def count(size: int, anchor: str | None) -> None:
        nonlocal total
        if anchor is not None:
            anchored[anchor] = size
        if open_sizes:
            open_sizes[-1][1] += size
            size = open_sizes[-1][1]
        else:
            total += size
            size = total
        if size > MAX_YAML_NODES:
            raise RecipeError(
                f"recipe is too large: over {MAX_YAML_NODES} YAML nodes (aliases expanded)"
            )

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_sizes) >= MAX_YAML_DEPTH:
                raise RecipeError(f"recipe nests deeper than {MAX_YAML_DEPTH} levels")
            open_sizes.append([event.anchor, 1])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size = open_sizes.pop()
            count(size, anchor)
        elif isinstance(event, yaml.ScalarEvent):
            count(1, event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            count(anchored.get(event.anchor or "", 1), None)


def load_recipe_yaml(text: str | bytes) -> Recipe:
    """Parse and validate a recipe written in YAML."""
    if len(text) > MAX_YAML_BYTES:
        raise RecipeError(f"recipe is {len(text)} bytes; the limit is {MAX_YAML_BYTES}")
    try:
        _check_yaml_shape(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe is not valid YAML: {' '.join(str(exc).split())}") from None
    except ValueError as exc:  # PyYAML's int(): a number of over 4,300 digits
        raise RecipeError(f"recipe has a value YAML cannot read: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise RecipeError("recipe: expected a YAML map with name, inputs, nodes and output")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise RecipeError(f"recipe: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    name = _text(doc.get("name"), "recipe name", pattern=None)
    inputs = doc.get("inputs") or []
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list):
        raise RecipeError(f"recipe {name!r}: 'inputs' must be a list of names")
    inputs = [_text(i, f"recipe {name!r}: input") for i in inputs]
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise RecipeError(f"recipe {name!r}: 'nodes' must be a non-empty map of node id -> node")
    parsed: dict[str, tuple[Any, list[Any], Mapping[str, Any]]] = {}
    for node_id, body in raw_nodes.items():
        node_id = _text(node_id if isinstance(node_id, str) else str(node_id), "node id")
        if not isinstance(body, dict):
            raise RecipeError(f"node {node_id!r}: expected a map with effect, input(s), params")
        bad = set(body) - _NODE_KEYS
        if bad:
            raise RecipeError(
                f"node {node_id!r}: unknown key(s) {', '.join(sorted(map(str, bad)))}"
            )
        if "effect" not in body:
            raise RecipeError(f"node {node_id!r}: no 'effect'")
        if "input" in body and "inputs" in body:
            raise RecipeError(f"node {node_id!r}: give 'input' or 'inputs', not both")
        node_inputs = body.get("inputs", body.get("input", []))
        if isinstance(node_inputs, str):
            node_inputs = [node_inputs]
        if not isinstance(node_inputs, list):
            raise RecipeError(f"node {node_id!r}: 'inputs' must be a list of names")
        parsed[node_id] = (body["effect"], node_inputs, body.get("params") or {})
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise RecipeError(f"recipe {name!r}: 'description' must be text")
    return _build(name, inputs, parsed, doc.get("output"), description)


def recipe_from_record(record: Any) -> Recipe:
    """Validate a stored ``recipe`` record (schema, effects, graph) and return the recipe."""
    try:
        validate_record(record)
    except RecordError as exc:
        raise RecipeError(str(exc)) from None
    if record["type"] != "recipe":
        raise RecipeError(f"expected a recipe record, got a {record['type']!r} record")
    parsed = {
        node_id: (body["effect"], list(body["inputs"]), body.get("params", {}))
        for node_id, body in record["nodes"].items()
    }
    return _build(
        record["name"], list(record["inputs"]), parsed, record["output"], record.get("description")
    )
