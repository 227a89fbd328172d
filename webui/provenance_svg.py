"""The provenance graph of a work as a standalone SVG picture (the provenance page, and
``artdag provenance --format svg``).

The graph itself (:class:`provenance.graph.ProvenanceGraph`, built by
:func:`provenance.graph.build_graph`) is data; this module only draws it, in two steps:
:func:`layout_graph` places the boxes and :func:`to_svg` writes the SVG text.

The layout is done by hand (layered: one column per distance from the output, longest path,
barycentre ordering within a column) instead of with Graphviz: ``dot`` is a native binary that a
fresh machine does not have and pip cannot install, and a provenance graph is a DAG whose
layering is a few dozen lines. A signed record may still *say* that a work is its own input, so
edges that close a cycle are found and drawn as back edges (red loops under the boxes).
Text is monospace, so its width is known without measuring fonts.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

from provenance.graph import (
    NODE_KINDS,
    PEOPLE_RELATIONS,
    GraphEdge,
    GraphNode,
    ProvenanceGraph,
    shown_label,
)

__all__ = ["Box", "GraphLayout", "layout_graph", "to_svg"]

_FONT = 12  # px, monospace: a character is 0.6 em wide, so text width is known without fonts
_CHAR = _FONT * 0.6
_PERSON_STROKE = ' stroke="#9a9a9a" stroke-dasharray="5,3"'  # lighter: many converge on people
_BOX_H, _PAD, _ROW_GAP, _COL_GAP, _MARGIN, _TOP = 38, 10, 14, 90, 20, 56


@dataclass(frozen=True, slots=True)
class Box:
    """Where a node's box is drawn (its height is the same for every box)."""

    x: float
    y: float
    width: float


@dataclass(frozen=True, slots=True)
class GraphLayout:
    """Where everything goes: each node's column (``depth``) and ``boxes``, the edges that close
    a cycle (``back``), the height of the boxes' area (``body_h``, below ``_TOP``) and the
    picture's size, with the legend at ``legend_y``."""

    depth: dict[str, int]
    back: frozenset[GraphEdge]
    boxes: dict[str, Box]
    body_h: float
    width: float
    height: float
    legend_y: float


def _layers(graph: ProvenanceGraph) -> tuple[dict[str, int], set[GraphEdge]]:
    """Column of every node (longest path from the root) and the edges that close cycles."""
    order = list(graph.nodes)
    out: dict[str, list[GraphEdge]] = {n: [] for n in order}
    for e in graph.edges:
        out[e.src].append(e)
    back: set[GraphEdge] = set()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    topo: list[str] = []
    for start in order:  # iterative DFS: deep graphs must not hit the recursion limit
        if start in state:
            continue
        state[start] = 1
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, i = stack[-1]
            if i < len(out[node]):
                stack[-1] = (node, i + 1)
                edge = out[node][i]
                if state.get(edge.dst) == 1:
                    back.add(edge)
                elif edge.dst not in state:
                    state[edge.dst] = 1
                    stack.append((edge.dst, 0))
            else:
                state[node] = 2
                topo.append(node)
                stack.pop()
    depth = {n: 0 for n in order}
    for node in reversed(topo):  # topological order: sources first
        for edge in out[node]:
            if edge not in back:
                depth[edge.dst] = max(depth[edge.dst], depth[node] + 1)
    things = [depth[n] for n in order if graph.nodes[n].kind != "person"]
    people = max(things, default=-1) + 1  # everyone in one column, the last: who made it
    for n in order:
        if graph.nodes[n].kind == "person":
            depth[n] = people
    return depth, back


def _box_width(node: GraphNode) -> float:
    return max(len(shown_label(node)), len(node.kind)) * _CHAR + 2 * _PAD


def _columns(graph: ProvenanceGraph, depth: dict[str, int]) -> dict[int, list[str]]:
    """The node ids of each column, ordered by kind, then the barycentre of their parents'
    rows, then label."""
    columns: dict[int, list[str]] = {}
    for node_id in graph.nodes:
        columns.setdefault(depth[node_id], []).append(node_id)
    kind_rank = {k: i for i, k in enumerate(NODE_KINDS)}
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        preds[e.dst].append(e.src)
    position: dict[str, float] = {}
    for col in sorted(columns):
        ids = columns[col]

        def key(n: str) -> tuple[int, float, str]:
            placed = [position[p] for p in preds[n] if p in position]
            centre = sum(placed) / len(placed) if placed else 0.0
            return (kind_rank[graph.nodes[n].kind], centre, graph.nodes[n].label)

        ids.sort(key=key)
        for i, n in enumerate(ids):
            position[n] = float(i)
    return columns


def layout_graph(graph: ProvenanceGraph) -> GraphLayout:
    """Columns left to right from the output, each centred vertically, each box centred in its
    column; people in the last column."""
    depth, back = _layers(graph)
    columns = _columns(graph, depth)
    widths = {c: max(_box_width(graph.nodes[n]) for n in ids) for c, ids in columns.items()}
    tallest = max(len(ids) for ids in columns.values())
    body_h = tallest * (_BOX_H + _ROW_GAP) - _ROW_GAP
    boxes: dict[str, Box] = {}
    x = float(_MARGIN)
    for col in sorted(columns):
        ids = columns[col]
        col_h = len(ids) * (_BOX_H + _ROW_GAP) - _ROW_GAP
        y = _TOP + (body_h - col_h) / 2
        for n in ids:
            w = _box_width(graph.nodes[n])
            boxes[n] = Box(x + (widths[col] - w) / 2, y, w)
            y += _BOX_H + _ROW_GAP
        x += widths[col] + _COL_GAP
    width = max(x - _COL_GAP + _MARGIN, 760.0)
    legend_y = _TOP + body_h + (60 if back else 30)  # room for the loops of back edges
    height = legend_y + 40 + (18 if graph.notes else 0) * min(len(graph.notes), 5)
    return GraphLayout(depth, frozenset(back), boxes, body_h, width, height, legend_y)


def _esc(text: str) -> str:
    return xml_escape(text, {'"': "&quot;"})


def to_svg(graph: ProvenanceGraph) -> str:
    """A standalone SVG: one column per step upstream from the output (left), boxes coloured by
    kind with a legend, arrows from each thing to what it was made from or by (dashed to people),
    and a ``<title>`` tooltip on every box and arrow carrying full CIDs and dids."""
    at = layout_graph(graph)
    width, height = at.width, at.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{_FONT}">',
        f"<title>Provenance of {_esc(graph.root)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker>',
        "</defs>",
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="{_MARGIN}" y="26" font-size="15" font-weight="bold">Provenance of '
        f"{_esc(graph.nodes[graph.root].label)}<title>{_esc(graph.root)}</title></text>",
        f'<text x="{_MARGIN}" y="44" font-size="11" fill="#555">{len(graph.nodes)} nodes, '
        f"{len(graph.edges)} edges; arrows point from a work to what it was made from or by"
        f"{'; TRUNCATED at ' + str(graph.max_nodes) + ' nodes' if graph.truncated else ''}"
        f"{'; red dotted: records that contradict each other (a cycle)' if at.back else ''}"
        "</text>",
        '<g class="edges" fill="none" stroke="#555" stroke-width="1.2">',
        *_edges(graph, at),
        "</g>",
        '<g class="nodes">',
        *_nodes(graph, at),
        "</g>",
        f'<g class="legend" font-size="11" transform="translate({_MARGIN},{at.legend_y:.0f})">',
        *_legend(graph),
        "</g>",
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def _edges(graph: ProvenanceGraph, at: GraphLayout) -> list[str]:
    """An arrow per edge (a curve to the next columns, or a loop under the boxes for an edge
    closing a cycle), with the bound recipe input's name by the arrowhead."""
    out: list[str] = []
    for e in graph.edges:
        src, dst = at.boxes[e.src], at.boxes[e.dst]
        dash = _PERSON_STROKE if e.relation in PEOPLE_RELATIONS else ""
        if at.depth[e.dst] > at.depth[e.src] and e not in at.back:
            x1, y1, x2, y2 = src.x + src.width, src.y + _BOX_H / 2, dst.x, dst.y + _BOX_H / 2
            bend = max((x2 - x1) / 2, 30.0)
            c1, c2 = f"{x1 + bend:.1f},{y1:.1f}", f"{x2 - bend:.1f},{y2:.1f}"
            path = f"M{x1:.1f},{y1:.1f} C{c1} {c2} {x2:.1f},{y2:.1f}"
        else:  # an edge closing a cycle: a loop under the boxes, bottom to bottom
            x1, y1 = src.x + src.width / 2, src.y + _BOX_H
            x2, y2 = dst.x + dst.width / 2, dst.y + _BOX_H
            low = _TOP + at.body_h + 24
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{low:.1f} {x2:.1f},{low:.1f} {x2:.1f},{y2:.1f}"
            dash = ' stroke-dasharray="2,3" stroke="#c0392b"'
        relation = f"{e.relation} {e.name}" if e.name else e.relation
        tip = f"{graph.nodes[e.src].label} {relation} {graph.nodes[e.dst].label}"
        out.append(
            f'<path d="{path}" marker-end="url(#arrow)"{dash}><title>{_esc(tip)}</title></path>'
        )
        if e.name:  # the recipe input an input was bound to, next to its arrowhead
            out.append(
                f'<text x="{x2 - 6:.1f}" y="{y2 - 5:.1f}" text-anchor="end" font-size="10" '
                f'fill="#333" stroke="none">{_esc(e.name)}</text>'
            )
    return out


def _nodes(graph: ProvenanceGraph, at: GraphLayout) -> list[str]:
    """A box per node: its kind, its label and a tooltip with its id and attributes."""
    out: list[str] = []
    for node in graph.nodes.values():
        box = at.boxes[node.id]
        tip = f"{node.kind} {node.id}"
        for k, v in node.attrs.items():
            if v not in (None, "", {}, []):
                tip += f"\n{k}: {v}"
        out.append(
            f'<g class="node" data-kind="{node.kind}"><title>{_esc(tip)}</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{_BOX_H}" '
            f'rx="6" fill="{NODE_KINDS[node.kind]}" stroke="#333" stroke-width="1"/>'
            f'<text x="{box.x + _PAD:.1f}" y="{box.y + 14:.1f}" font-size="10" fill="#444">'
            f"{_esc(node.kind)}</text>"
            f'<text x="{box.x + _PAD:.1f}" y="{box.y + 30:.1f}" fill="#000">'
            f"{_esc(shown_label(node))}</text></g>"
        )
    return out


def _legend(graph: ProvenanceGraph) -> list[str]:
    """A swatch per kind, the dashed line to a person, and the first notes."""
    out: list[str] = []
    lx = 0.0
    for kind, colour in NODE_KINDS.items():
        out.append(
            f'<rect x="{lx:.0f}" y="0" width="14" height="14" rx="3" fill="{colour}" '
            f'stroke="#333"/><text x="{lx + 19:.0f}" y="11">{kind}</text>'
        )
        lx += 19 + len(kind) * 11 * 0.6 + 16
    out.append(
        f'<path d="M{lx:.0f},7 h30"{_PERSON_STROKE} fill="none"/>'
        f'<text x="{lx + 36:.0f}" y="11">to a person</text>'
    )
    for i, note in enumerate(graph.notes[:5]):
        out.append(f'<text x="0" y="{34 + 18 * i}" fill="#c0392b">note: {_esc(note)}</text>')
    return out
