"""The recipe page's render function (``WebServices.render``): validate, store, then render in
the background in the daemon's nursery, reporting progress events to a callback.

``web_render(service, nursery)`` returns ``render(doc, inputs, on_event)``. Awaiting it parses the
recipe document with the renderer's own parser (the YAML recipe format, given as a map), checks
that every input is in the store, signs and stores the recipe and plans the render; any problem
raises :class:`renderer.RecipeError` (a ValueError) with the renderer's one-line message and
nothing starts. The render then runs in the daemon's nursery — it outlives the HTTP request —
one at a time (this node has few cores; later renders wait, reported as ``queued``), and calls
``on_event`` with::

    {"event": "queued"}                                   # waiting for the render slot
    {"event": "progress", "frames": n}                    # repeated: frames rendered so far
    {"event": "done", "output": cid, "provenance": cid, "recipe": cid,
     "rendered": n, "cached": n, "frames": n, "seconds": s}
    {"event": "error", "message": "one line"}

exactly one of ``done`` or ``error`` last. A failure of one render is reported to its callback
and logged, never raised into the daemon's nursery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio
import yaml

import dag
from daemon.core.render.service import PreparedRender, RenderService
from dag import cid_to_str
from provenance import RecordError
from renderer import RecipeError, RenderError, load_recipe_yaml

__all__ = ["WebRender", "web_render"]

log = logging.getLogger("artdag.render")

Row = dict[str, Any]
OnEvent = Callable[[Row], None]
WebRender = Callable[[Row, dict[str, str], OnEvent], Awaitable[Row]]

#: how many web renders run at once (ffmpeg already uses the node's cores).
PARALLEL_RENDERS = 1


def _parse_document(doc: Mapping[str, Any]) -> Any:
    """The recipe in ``doc`` through the renderer's YAML parser (the same checks as a file)."""
    if not isinstance(doc, Mapping):
        raise RecipeError("recipe: expected a map with name, inputs, nodes and output")
    try:
        text = yaml.safe_dump(dict(doc), sort_keys=False)
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe: cannot be written as YAML: {exc}") from None
    return load_recipe_yaml(text)


def web_render(service: RenderService, nursery: trio.Nursery) -> WebRender:
    """The render function of the web UI over the node's render service; renders run in
    ``nursery``."""
    slots = trio.CapacityLimiter(PARALLEL_RENDERS)

    async def run(prepared: PreparedRender, on_event: OnEvent) -> None:
        def emit(event: Row) -> None:
            try:
                on_event(event)
            except Exception:  # a broken listener must not stop the render
                log.exception("web render listener failed on %s", event.get("event"))

        try:
            if slots.available_tokens == 0:
                emit({"event": "queued"})
            async with slots:
                emit({"event": "progress", "frames": 0})
                with service.workdir() as workdir:
                    result = await service.executor(workdir).run(
                        prepared.plan, lambda n: emit({"event": "progress", "frames": n})
                    )
                outcome = await service.finish(prepared, result)
        except (RenderError, RecordError, dag.DagError, ValueError, OSError) as exc:
            log.warning("web render of %s failed: %s", prepared.recipe.name, exc)
            emit({"event": "error", "message": str(exc) or type(exc).__name__})
            return
        except Exception as exc:
            log.exception("web render of %s failed", prepared.recipe.name)
            emit({"event": "error", "message": f"render failed: {exc}"})
            return
        emit(
            {
                "event": "done",
                "output": cid_to_str(outcome.output),
                "provenance": cid_to_str(outcome.provenance),
                "recipe": cid_to_str(outcome.recipe),
                "rendered": len(result.rendered),
                "cached": len(result.cached),
                "frames": result.frames,
                "seconds": round(result.seconds, 3),
            }
        )

    async def render(doc: Row, inputs: dict[str, str], on_event: OnEvent) -> Row:
        recipe = _parse_document(doc)
        recipe_cid = await service.add_recipe(recipe)
        try:
            prepared = await service.prepare(cid_to_str(recipe_cid), inputs)
        except dag.CidError as exc:
            raise RecipeError(f"input: {exc}") from None
        nursery.start_soon(run, prepared, on_event)
        return {"recipe": cid_to_str(recipe_cid), "steps": len(prepared.plan.steps)}

    return render
