"""The public provenance page of a work: ``/provenance/<cid>`` (HTML) and ``?format=json``.

Fediverse posts link here. The page shows the work (a player for video and audio, the image
for images), who signed it, and the provenance graph as a picture (``provenance.graph``'s
hand-laid SVG). The daemon passes in how to build the graph and how to describe the asset, so
this module imports nothing from ``daemon``. The web UI issue turns this into a Jinja2 page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape

from quart import Response
from quart import request as quart_request
from quart_trio import QuartTrio

from dag import CidError, DagError, cid_to_str, parse_cid
from provenance import ProvenanceError
from provenance import graph as pg

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


def _media(cid: str, mime: str | None, name: str) -> str:
    src = f"/ipfs/{cid}"
    kind = (mime or "").split("/", 1)[0]
    if kind == "video":
        return f'<video controls preload="metadata" src="{src}" style="max-width:100%"></video>'
    if kind == "audio":
        return f'<audio controls preload="metadata" src="{src}"></audio>'
    if kind == "image":
        return f'<img src="{src}" alt="{escape(name)}" style="max-width:100%">'
    return f'<a href="{src}">{escape(name or cid)}</a>'


def add_provenance_routes(app: QuartTrio, graph_for: GraphFor, asset_for: AssetFor) -> None:
    """Mount ``GET /provenance/<cid>`` (public)."""

    @app.get("/provenance/<cid>")
    async def provenance_page(cid: str) -> Response:
        try:
            text = cid_to_str(parse_cid(cid))
        except CidError as exc:
            return Response(f"bad CID: {exc}\n", status=400, content_type="text/plain")
        asset = await asset_for(text)
        graph: pg.ProvenanceGraph | None = None
        problem = ""
        try:
            graph = await graph_for(text)
        except (DagError, ProvenanceError, ValueError) as exc:
            problem = str(exc)
        if asset is None and graph is None:
            return Response(f"nothing known about {text}\n", status=404, content_type="text/plain")
        if quart_request.args.get("format") == "json":
            body = {
                "cid": text,
                "asset": None if asset is None else asset.__dict__,
                "graph": None if graph is None else pg.to_json(graph),
                "problem": problem or None,
            }
            return Response(json.dumps(body), content_type="application/json")
        name = asset.name if asset else text
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>provenance of {escape(name)}</title></head><body>",
            f"<h1>{escape(name)}</h1>",
            _media(text, asset.mime if asset else None, name),
            f"<p><code>ipfs://{escape(text)}</code> · <a href='/ipfs/{escape(text)}'>file</a>",
            " · <a href='?format=json'>JSON</a></p>",
        ]
        if asset is not None:
            parts.append(
                f"<p>signed by <code>{escape(asset.signer)}</code> on {escape(asset.created)}</p>"
            )
        if graph is not None:
            parts.append("<h2>Provenance</h2>")
            parts.append(_XML_DECL.sub("", pg.to_svg(graph)))
        elif problem:
            parts.append(f"<p>No render provenance: {escape(problem)}</p>")
        parts.append("</body></html>")
        return Response("".join(parts), content_type="text/html; charset=utf-8")
