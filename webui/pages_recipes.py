"""The recipes pages: the built-in effects, a form that composes a recipe and renders it, and
the progress page of a render.

- ``GET /recipes`` (login): the effects (inputs, parameters with type, default, range,
  choices) and the compose form: a name, the first input asset, an optional second one (for
  effects that take two, e.g. blend), and up to :data:`MAX_STEPS` step slots, each an effect
  and its parameters as ``key=value, ...``. Step 1 takes the first asset, each later step the
  result of the one before; an effect with two inputs takes the second asset as its second.
- ``POST /recipes/render`` (login + CSRF): builds the recipe document (the YAML recipe format
  as a map), hands it to ``services.render.render`` which validates it with the renderer's own
  parser (its message is shown on the form, status 400) and starts the render in the daemon's
  nursery; redirects (303) to ``/renders/<id>``.
- ``GET /renders/<id>`` (login): progress (``<div data-poll>`` that artdag.js polls), then
  links to the output asset and its provenance; ``GET /renders/<id>.json`` the state
  ``{state: running|done|failed, done, total, message, output?, provenance?}``.

Render state lives here, in memory (:class:`RenderBoard`, the last :data:`MAX_RENDERS`
renders), fed by the port's ``on_event`` callback; it is gone when the daemon restarts (the
outputs and their provenance are not: they are assets and records in the store).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from quart import Blueprint, Response, redirect
from werkzeug.datastructures import MultiDict

from .page_common import checked_form, login_required, page
from .services import Row, WebServices

__all__ = ["MAX_RENDERS", "MAX_STEPS", "FormError", "RenderBoard", "RenderState", "register"]

MAX_STEPS = 4
MAX_RENDERS = 50
FIRST_INPUT, SECOND_INPUT = "clip", "other"


class FormError(ValueError):
    """The compose form is incomplete or a parameter is not written as ``key=value``."""


@dataclass
class RenderState:
    """One render as the pages see it, updated by the port's progress events."""

    id: str
    name: str
    steps: list[str]
    recipe: str | None = None
    state: str = "running"  # running | done | failed
    frames: int = 0
    message: str = "starting"
    output: str | None = None
    provenance: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def update(self, event: Row) -> None:
        """Apply one event of :meth:`webui.services.RenderPort.render`."""
        kind = event.get("event")
        if self.state != "running":
            return
        if kind == "queued":
            self.message = "waiting for another render to finish"
        elif kind == "progress":
            self.frames = int(event.get("frames") or 0)
            self.message = f"rendering {len(self.steps)} step(s): {self.frames} frames so far"
        elif kind == "done":
            self.state = "done"
            self.output, self.provenance = event.get("output"), event.get("provenance")
            self.recipe = event.get("recipe") or self.recipe
            self.frames = int(event.get("frames") or self.frames)
            self.message = (
                f"done: {event.get('rendered', 0)} step(s) rendered, {event.get('cached', 0)} "
                f"from cache, {self.frames} frames in {float(event.get('seconds') or 0):.1f} s"
            )
            self.finished = time.time()
        elif kind == "error":
            self.state = "failed"
            self.message = f"failed: {event.get('message') or 'unknown error'}"
            self.finished = time.time()

    def to_json(self) -> Row:
        out: Row = {
            "id": self.id,
            "state": self.state,
            # frames so far; the total is not known before the render ends (indeterminate bar)
            "done": self.frames,
            "total": None if self.state == "running" else max(self.frames, 1),
            "message": self.message,
            "recipe": self.recipe,
        }
        if self.state == "done":
            out |= {"output": self.output, "provenance": self.provenance}
        return out


class RenderBoard:
    """The recent renders by id, at most ``limit`` (the oldest finished ones go first)."""

    def __init__(self, limit: int = MAX_RENDERS) -> None:
        self.limit = limit
        self.renders: OrderedDict[str, RenderState] = OrderedDict()

    def new(self, name: str, steps: list[str]) -> RenderState:
        rid = secrets.token_hex(8)
        return RenderState(rid, name, steps)

    def add(self, state: RenderState) -> None:
        self.renders[state.id] = state
        while len(self.renders) > self.limit:
            finished = [k for k, r in self.renders.items() if r.state != "running"]
            del self.renders[finished[0] if finished else next(iter(self.renders))]

    def get(self, rid: str) -> RenderState | None:
        return self.renders.get(rid)


def parse_value(text: str) -> Any:
    """A form value, read like ``artdag render --param``: true/false, an integer, a number,
    or the text itself (the renderer then checks it against the parameter's type)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            pass
    return text.strip()


def parse_params(text: str, where: str) -> dict[str, Any]:
    """``key=value, key=value`` (commas or new lines between) -> a map; FormError if not.
    An empty value (``key=``) is left out, so the parameter keeps its default."""
    params: dict[str, Any] = {}
    for piece in text.replace("\n", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        key, eq, value = piece.partition("=")
        if not eq or not key.strip():
            raise FormError(f"{where}: write parameters as key=value, separated by commas "
                            f"(got {piece!r})")  # fmt: skip
        if key.strip() in params:
            raise FormError(f"{where}: parameter {key.strip()!r} is given twice")
        if value.strip():  # "key=" (as in the placeholder) leaves the default
            params[key.strip()] = parse_value(value)
    return params


def build_recipe(
    form: MultiDict[str, str], effects: list[Row]
) -> tuple[Row, dict[str, str], list[str]]:
    """The recipe document, its input bindings and a one-line summary per step, from the
    compose form; FormError for what the form itself lacks (the renderer checks the rest)."""
    by_name = {e["name"]: e for e in effects}
    name = form.get("name", "").strip()
    if not name:
        raise FormError("give the recipe a name")
    first, second = form.get("input_a", "").strip(), form.get("input_b", "").strip()
    if not first:
        raise FormError("choose the input asset")
    nodes: dict[str, Row] = {}
    summary: list[str] = []
    previous, uses_second = FIRST_INPUT, False
    for slot in range(1, MAX_STEPS + 1):
        effect = form.get(f"effect{slot}", "").strip()
        if not effect:
            continue
        where = f"step {slot} ({effect})"
        params = parse_params(form.get(f"params{slot}", ""), where)
        takes = len(by_name[effect]["inputs"]) if effect in by_name else 1
        inputs = [previous]
        if takes >= 2:
            if not second:
                raise FormError(f"{where} takes two inputs: choose the second asset")
            inputs.append(SECOND_INPUT)
            uses_second = True
        node_id = f"step{slot}"
        body: Row = {"effect": effect, "inputs": inputs}
        if params:
            body["params"] = params
        nodes[node_id] = body
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        summary.append(f"{effect}({shown})" if shown else effect)
        previous = node_id
    if not nodes:
        raise FormError("choose at least one effect")
    bindings = {FIRST_INPUT: first}
    if uses_second:
        bindings[SECOND_INPUT] = second
    doc: Row = {"name": name, "inputs": list(bindings), "nodes": nodes, "output": previous}
    return doc, bindings, summary


def _defaults_text(effect: Row) -> str:
    """The effect's parameters with their defaults, as a placeholder for the params field."""
    parts = []
    for p in effect["params"]:
        default = p["default"]
        if isinstance(default, bool):
            default = str(default).lower()
        parts.append(f"{p['name']}={'' if default is None else default}")
    return ", ".join(parts)


def _range_text(param: Row) -> str:
    if param.get("choices"):
        return " | ".join(param["choices"])
    low, high = param.get("min"), param.get("max")
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low} … {'' if high is None else high}"


def register(bp: Blueprint, services: WebServices) -> None:
    board = RenderBoard()

    def effect_rows() -> list[Row]:
        rows = services.render.effects() if services.render is not None else []
        return [
            e
            | {
                "defaults_text": _defaults_text(e),
                "params": [p | {"range": _range_text(p)} for p in e["params"]],
            }
            for e in rows
        ]

    async def compose_page(
        status: int = 200, error: str | None = None, values: MultiDict[str, str] | None = None
    ) -> Response:
        assets = await services.assets.list(None, 500, 0)
        return await page(
            "recipes.html",
            status=status,
            title="Recipes",
            effects=effect_rows(),
            assets=assets,
            slots=range(1, MAX_STEPS + 1),
            values=values if values is not None else MultiDict(),
            error=error,
            can_render=services.render is not None,
            recent=list(reversed(board.renders.values()))[:10],
        )

    @bp.get("/recipes")
    @login_required
    async def recipes() -> Response:
        return await compose_page()

    @bp.post("/recipes/render")
    async def recipes_render() -> Any:
        form = await checked_form()
        render = services.render
        if render is None:
            return await compose_page(503, "rendering is not available on this node", form)
        try:
            doc, bindings, summary = build_recipe(form, effect_rows())
        except FormError as exc:
            return await compose_page(400, str(exc), form)
        state = board.new(doc["name"], summary)
        try:
            started = await render.render(doc, bindings, state.update)
        except ValueError as exc:  # the renderer's RecipeError (one line) and bad CIDs
            return await compose_page(400, str(exc), form)
        state.recipe = started.get("recipe")
        board.add(state)
        return redirect(f"/renders/{state.id}", 303)

    @bp.get("/renders/<rid>.json")
    @login_required
    async def render_status(rid: str) -> Any:
        state = board.get(rid)
        if state is None:
            return {"state": "failed", "message": "no such render", "done": 0, "total": None}, 404
        return state.to_json()

    @bp.get("/renders/<rid>")
    @login_required
    async def render_progress(rid: str) -> Response:
        state = board.get(rid)
        if state is None:
            return await page(
                "error.html",
                status=404,
                title="No such render",
                message=f"No render {rid!r} here: renders are listed only until the daemon "
                "restarts (their outputs stay in your assets).",
            )
        return await page("render.html", title=f"Render {state.name}", r=state)
