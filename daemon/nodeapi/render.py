"""Render: the built-in effects, recipes, renders (on this node or on the market) and lineage.

:class:`RenderApi` is what a node can do with the renderer; :class:`LocalRender` does it over
:meth:`daemon.services.Services.renders` (and the market, which needs the daemon's network),
:class:`RemoteRender` asks the daemon (``/api/v1/effects``, ``/api/v1/recipes``,
``/api/v1/render``, ``/api/v1/provenance/<cid>``). A render reports progress through
``on_event`` with the events the daemon streams as NDJSON: ``{"frames": n}`` while this node
renders, ``{"step": id, "status": ..., "steps": n, "finished": n}`` on the market.

``effects`` needs no node (the effects are built into the renderer); it still goes through the
API, so that with a daemon running the CLI lists the effects the daemon renders with.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

from daemon.core.market.network_render import render_on_network
from daemon.core.render.service import RenderOutcome
from daemon.nodeapi.client import DaemonError
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services
from dag import cid_to_str
from renderer import BUILTIN_EFFECTS, effect_cid, load_recipe_yaml

__all__ = [
    "PROVENANCE_FORMATS",
    "EffectInfo",
    "EffectParam",
    "LocalRender",
    "OnEvent",
    "ProvenanceText",
    "RecipeAdded",
    "RemoteRender",
    "RenderApi",
    "RenderDone",
    "RenderRequest",
    "RenderRequestError",
]

OnEvent = Callable[[dict[str, Any]], None]

#: ``--format`` of ``artdag provenance``; ``lineage`` is the summary printed without it.
PROVENANCE_FORMATS = ("lineage", "tree", "json", "dot", "svg")


class RenderRequestError(ValueError):
    """The body of a render request is malformed."""


@dataclass(frozen=True)
class EffectParam:
    name: str
    describe: str  # type, range and default, as the renderer words them
    doc: str


@dataclass(frozen=True)
class EffectInfo:
    name: str
    release: int
    inputs: list[tuple[str, str]]  # (name, kind)
    variadic: bool
    output: str
    cid: str  # the effect record's CID
    params: list[EffectParam]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "release": self.release,
            "inputs": [list(pair) for pair in self.inputs],
            "variadic": self.variadic,
            "output": self.output,
            "cid": self.cid,
            "params": [{"name": p.name, "describe": p.describe, "doc": p.doc} for p in self.params],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> EffectInfo:
        return cls(
            name=body["name"],
            release=body["release"],
            inputs=[(n, k) for n, k in body["inputs"]],
            variadic=body["variadic"],
            output=body["output"],
            cid=body["cid"],
            params=[EffectParam(p["name"], p["describe"], p["doc"]) for p in body["params"]],
        )


@dataclass(frozen=True)
class RecipeAdded:
    cid: str
    name: str
    nodes: int
    inputs: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"cid": self.cid, "name": self.name, "nodes": self.nodes, "inputs": self.inputs}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RecipeAdded:
        return cls(body["cid"], body["name"], body["nodes"], list(body["inputs"]))


@dataclass(frozen=True)
class RenderRequest:
    """A render of ``recipe`` (a CID, or the path of a YAML file on the node's machine).
    ``market``: volunteers render the filter-graph steps (``replicas``, ``verify`` and
    ``deadline`` go with it); else this node renders, one ffmpeg graph per chain if ``fuse``."""

    recipe: str
    inputs: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    market: bool = False
    fuse: bool = False
    replicas: int | None = None
    verify: bool = False
    deadline: float | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "recipe": self.recipe,
            "inputs": self.inputs,
            "params": self.params,
            "verify": self.verify,
        }
        if not self.market:
            body |= {"market": False, "fuse": self.fuse}
        if self.replicas is not None:
            body["replicas"] = self.replicas
        if self.deadline is not None:
            body["deadline"] = self.deadline
        return body

    @classmethod
    def from_json(cls, raw: Any) -> RenderRequest:
        """The request in a body of ``POST /api/v1/render`` (``market`` is true unless the
        body says false: the route rendered on the market only before); RenderRequestError."""
        if not isinstance(raw, dict):
            raise RenderRequestError('body must be a JSON object {"recipe": ..., "inputs": {...}}')
        recipe = raw.get("recipe")
        if not isinstance(recipe, str) or not recipe:
            raise RenderRequestError('"recipe" must be a recipe CID or a YAML path')
        inputs, params = raw.get("inputs", {}), raw.get("params", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise RenderRequestError('"inputs" must map input names to CIDs')
        if not isinstance(params, dict):
            raise RenderRequestError('"params" must be an object of NODE.PARAM: value')
        replicas = raw.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or not 1 <= replicas <= 9):
            raise RenderRequestError('"replicas" must be an integer 1..9')
        deadline = raw.get("deadline")
        if deadline is not None and (not isinstance(deadline, int | float) or deadline <= 0):
            raise RenderRequestError('"deadline" must be a positive number of seconds')
        flags = {name: raw.get(name, default) for name, default in _FLAGS.items()}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise RenderRequestError(f'"{name}" must be true or false')
        return cls(recipe, inputs, params, replicas=replicas, deadline=deadline, **flags)


_FLAGS = {"verify": False, "market": True, "fuse": False}


@dataclass(frozen=True)
class RenderDone:
    output: str
    provenance: str
    recipe: str
    content_key: str
    rendered: list[str]  # step ids rendered (here or by volunteers)
    cached: list[str]  # step ids taken from a cache (this node's or the network's)
    seconds: float
    frames: int = 0

    @classmethod
    def of(cls, outcome: RenderOutcome) -> RenderDone:
        result = outcome.result
        return cls(
            cid_to_str(outcome.output),
            cid_to_str(outcome.provenance),
            cid_to_str(outcome.recipe),
            outcome.content_key,
            list(result.rendered),
            list(result.cached),
            result.seconds,
            result.frames,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "provenance": self.provenance,
            "recipe": self.recipe,
            "content_key": self.content_key,
            "rendered": self.rendered,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "frames": self.frames,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RenderDone:
        return cls(
            body["output"],
            body["provenance"],
            body["recipe"],
            body["content_key"],
            list(body["rendered"]),
            list(body["cached"]),
            body["seconds"],
            body.get("frames", 0),
        )


@dataclass(frozen=True)
class ProvenanceText:
    """The lineage or provenance graph of a CID, written out in ``format``."""

    cid: str
    format: str  # one of PROVENANCE_FORMATS
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"cid": self.cid, "format": self.format, "text": self.text}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ProvenanceText:
        return cls(body["cid"], body["format"], body["text"])


class RenderApi(Protocol):
    async def effects(self) -> list[EffectInfo]:
        """The built-in effects: inputs, parameters and record CID."""
        ...

    async def add_recipe(self, text: bytes) -> RecipeAdded:
        """Validate a YAML recipe, store its canonical signed record."""
        ...

    async def render(self, request: RenderRequest, on_event: OnEvent | None = None) -> RenderDone:
        """Render and sign the provenance; progress events to ``on_event``."""
        ...

    async def provenance(
        self, cid: str, fmt: str = "lineage", max_nodes: int = 5000
    ) -> ProvenanceText:
        """The lineage of a rendered output, or its provenance graph as tree/json/dot/svg."""
        ...


def effect_infos() -> list[EffectInfo]:
    infos = []
    for effect in BUILTIN_EFFECTS.values():
        params = [EffectParam(n, s.describe(), s.doc) for n, s in effect.params.items()]
        infos.append(
            EffectInfo(
                effect.name,
                effect.release,
                [(n, k) for n, k in effect.inputs],
                effect.variadic,
                effect.output,
                cid_to_str(effect_cid(effect.name)),
                params,
            )
        )
    return infos


def format_graph(graph: Any, fmt: str) -> str:
    """A :class:`provenance.graph.ProvenanceGraph` as tree, json, dot or svg text."""
    import json

    from provenance import graph as pg
    from webui.provenance_svg import to_svg

    if fmt == "tree":
        return "\n".join(pg.to_tree(graph))
    if fmt == "json":
        return json.dumps(pg.to_json(graph), indent=2, ensure_ascii=False)
    return pg.to_dot(graph) if fmt == "dot" else to_svg(graph)


class LocalRender:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def effects(self) -> list[EffectInfo]:
        return effect_infos()

    async def add_recipe(self, text: bytes) -> RecipeAdded:
        recipe = load_recipe_yaml(text)
        cid = await (await self._services.renders()).add_recipe(recipe)
        return RecipeAdded(cid_to_str(cid), recipe.name, len(recipe.nodes), list(recipe.inputs))

    async def render(self, request: RenderRequest, on_event: OnEvent | None = None) -> RenderDone:
        emit = on_event or (lambda _event: None)
        if request.market:
            market = await self._services.market()  # NeedsDaemon without the network
            outcome = await render_on_network(
                market,
                await self._services.renders(),
                request.recipe,
                request.inputs,
                request.params,
                replicas=request.replicas,
                verify=request.verify,
                deadline_s=request.deadline,
                progress=emit,
            )
        else:
            renders = await self._services.renders()
            outcome = await renders.render(
                request.recipe,
                request.inputs,
                request.params,
                fuse=request.fuse,
                progress=lambda n: emit({"frames": n}),
            )
        return RenderDone.of(outcome)

    async def provenance(
        self, cid: str, fmt: str = "lineage", max_nodes: int = 5000
    ) -> ProvenanceText:
        if fmt not in PROVENANCE_FORMATS:
            raise ValueError(f"format must be one of {', '.join(PROVENANCE_FORMATS)}, not {fmt!r}")
        renders = await self._services.renders()
        if fmt == "lineage":
            text = "\n".join(await renders.lineage_lines(cid))
        else:
            text = format_graph(await renders.provenance_graph(cid, max_nodes=max_nodes), fmt)
        return ProvenanceText(cid, fmt, text)


class RemoteRender:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def effects(self) -> list[EffectInfo]:
        body = await self._caller.call("GET", "/api/v1/effects")
        return [EffectInfo.from_json(item) for item in body["effects"]]

    async def add_recipe(self, text: bytes) -> RecipeAdded:
        body = await self._caller.call("POST", "/api/v1/recipes", content=text)
        return RecipeAdded.from_json(body)

    async def render(self, request: RenderRequest, on_event: OnEvent | None = None) -> RenderDone:
        if os.path.exists(request.recipe):  # a YAML file: the daemon reads it by absolute path
            request = replace(request, recipe=os.path.abspath(request.recipe))
        async for event in self._caller.lines("POST", "/api/v1/render", json=request.to_json()):
            if "error" in event:
                raise DaemonError(event["error"])
            if "done" in event:
                return RenderDone.from_json(event["done"])
            if on_event is not None and not event.get("waiting"):
                on_event(event)
        raise DaemonError("the daemon closed the render stream without a result")

    async def provenance(
        self, cid: str, fmt: str = "lineage", max_nodes: int = 5000
    ) -> ProvenanceText:
        params: dict[str, str | int] = {"format": fmt, "max_nodes": max_nodes}
        body = await self._caller.call(
            "GET", f"/api/v1/provenance/{quote(cid, safe='')}", params=params
        )
        return ProvenanceText.from_json(body)
