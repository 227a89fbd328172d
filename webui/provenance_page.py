"""The public provenance page of a work: ``/provenance/<cid>`` (HTML) and ``?format=json``.

Fediverse posts link here. The page shows the work (a player for video and audio, the image
for images), who signed it, and the provenance graph as a picture (the hand-laid SVG of
:mod:`webui.provenance_svg`). The daemon passes in how to build the graph and how to describe
the asset, so this module imports nothing from ``daemon``. The page is
``templates/provenance.html``, in the web UI's frame when the pages are mounted.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from quart import Response, current_app
from quart import request as quart_request
from quart_trio import QuartTrio

from dag import CidError, DagError, cid_to_str, parse_cid
from provenance import ProvenanceError
from provenance import graph as pg

from .page_common import page
from .provenance_svg import to_svg

__all__ = ["AssetSummary", "add_provenance_routes"]


@dataclass(frozen=True)
class AssetSummary:
    """What the page says about the work itself."""

    name: str
    mime: str | None
    signer: str
    created: str


GraphFor = Callable[[str], Awaitable[pg.ProvenanceGraph]]
AssetFor = Callable[[str], Awaitable[AssetSummary | None]]

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>\s*")


def _svg(graph: pg.ProvenanceGraph) -> Markup:
    """The graph's SVG, inline (:func:`~webui.provenance_svg.to_svg` escapes every label)."""
    return Markup(_XML_DECL.sub("", to_svg(graph)))


async def _render(context: dict[str, Any], status: int) -> Response:
    """Inside the web UI's frame when the pages are mounted; else the same template with a
    bare frame (an app serving only the gateway and this page)."""
    if "webui" in current_app.blueprints:
        return await page("provenance.html", status=status, **context)
    body = await _standalone().get_template("provenance.html").render_async(**context)
    return Response(body, status=status, content_type="text/html; charset=utf-8")


@functools.cache
def _standalone() -> jinja2.Environment:
    bare = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>{{ title }} · artdag</title></head><body><main>"
        "{% block content %}{% endblock %}</main></body></html>"
    )
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.DictLoader({"base.html": bare}),
                jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
            ]
        ),
        autoescape=True,
        enable_async=True,
    )


def add_provenance_routes(app: QuartTrio, graph_for: GraphFor, asset_for: AssetFor) -> None:
    """Mount ``GET /provenance/<cid>`` (public; ``?format=json`` for the data)."""

    @app.get("/provenance/<cid>")
    async def provenance_page(cid: str) -> Response:
        try:
            text = cid_to_str(parse_cid(cid))
        except CidError as exc:
            if quart_request.args.get("format") == "json":
                return Response(f"bad CID: {exc}\n", status=400, content_type="text/plain")
            return await _render({"title": "Bad CID", "error": f"bad CID: {exc}"}, 400)
        asset = await asset_for(text)
        graph: pg.ProvenanceGraph | None = None
        problem = ""
        try:
            graph = await graph_for(text)
        except (DagError, ProvenanceError, ValueError) as exc:
            problem = str(exc)
        json_wanted = quart_request.args.get("format") == "json"
        if asset is None and graph is None:
            if json_wanted:
                return Response(
                    f"nothing known about {text}\n", status=404, content_type="text/plain"
                )
            missing = {"title": "Not found", "error": f"nothing known about {text}"}
            return await _render(missing, 404)
        if json_wanted:
            body = {
                "cid": text,
                "asset": None if asset is None else asset.__dict__,
                "graph": None if graph is None else pg.to_json(graph),
                "problem": problem or None,
            }
            return Response(json.dumps(body), content_type="application/json")
        name = asset.name if asset else text
        kind = (asset.mime or "").split("/", 1)[0] if asset else ""
        context: dict[str, Any] = {
            "title": f"provenance of {name}",
            "name": name,
            "cid": text,
            "asset": asset,
            "kind": kind if kind in ("video", "audio", "image") else "file",
            "svg": None if graph is None else _svg(graph),
            "nodes": None if graph is None else len(graph.nodes),
            "truncated": bool(graph and graph.truncated),
            "problem": problem,
        }
        return await _render(context, 200)
