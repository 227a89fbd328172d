"""The provenance graph of a work: every upstream input, effect, recipe, step receipt, person
and claim reachable from an output, as one graph, and three ways to write it out.

:func:`build_graph` walks records through async callbacks given by the caller (load a verified
record by CID; find the provenance record of a content CID; find the claims on a CID; name an
asset), so it runs the same over a local node, a remote one or a test fixture; it imports no
I/O library. Everything else is pure: :func:`to_tree` (text lines), :func:`to_json` (a stable,
documented dict) and :func:`to_dot` (Graphviz DOT text). The picture (a standalone SVG, laid out
by hand) is presentation and lives with the web UI, in :mod:`webui.provenance_svg`.

The model. Node ids are full CID strings (a person's id is its ``did:key``); kinds are
``output`` (content made by a render: it has a provenance record), ``asset`` (source content
without one), ``provenance``, ``effect``, ``recipe``, ``receipt``, ``person`` and ``claim``.
Edges point upstream, from the made thing to what it was made from or by, and read
"src RELATION dst": ``provenance`` (content -> its provenance record), ``input`` (provenance ->
input content; ``name`` is the recipe input it was bound to), ``made-by-effect``, ``recipe``,
``receipt`` (provenance -> step receipt), ``rendered-by`` (provenance or receipt -> renderer),
``infrastructure`` (provenance -> volunteer whose steps were accepted), ``signed-by``,
``authored-by`` (effect or recipe -> author), ``claimed-by`` (content -> claim) and ``cites``
(claim -> provenance record, input, effect or recipe it names).

Content-addressed records cannot form a cycle by hashing alone, but a signed record may still
*say* that a work is its own input, so the walk expands each node once (and the SVG lays edges
that close a cycle as back edges). The walk stops at ``max_nodes`` and says so in every
rendering. ``to_dot`` is there for people who have Graphviz.

The data classes live in :mod:`provenance.graph_model`, the walk in :mod:`provenance.graph_walk`;
this module writes a graph out and re-exports their public names.
"""

from __future__ import annotations

from typing import Any

from .graph_model import (
    NODE_KINDS,
    PEOPLE_RELATIONS,
    GraphEdge,
    GraphNode,
    ProvenanceGraph,
    json_value,
    short_cid,
    short_did,
    shown_label,
)
from .graph_walk import DescribeAsset, FindClaims, FindProvenance, LoadRecord, build_graph

__all__ = [
    "NODE_KINDS",
    "PEOPLE_RELATIONS",
    "DescribeAsset",
    "FindClaims",
    "FindProvenance",
    "LoadRecord",
    "GraphEdge",
    "GraphNode",
    "ProvenanceGraph",
    "build_graph",
    "short_cid",
    "short_did",
    "shown_label",
    "to_dot",
    "to_json",
    "to_tree",
]

JSON_FORMAT = "artdag-provenance-graph"


# -- writing it out ---------------------------------------------------------------------------


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{role} {bp / 100:g}%" for role, bp in split.items())


def _tree_text(node: GraphNode) -> str:
    a, full = node.attrs, node.id
    if node.kind in ("output", "asset"):
        about = f" (asset {a['name']!r})" if "name" in a else ""
        return f"{full}{about}" + ("" if node.kind == "output" else "  [source]")
    if node.kind == "provenance":
        extra = f", {a['created']}" if "created" in a else ""
        if a.get("overrides"):
            extra += ", parameters " + ", ".join(f"{k}={v}" for k, v in a["overrides"].items())
        if a.get("software"):
            extra += ", software " + ", ".join(f"{k} {v}" for k, v in a["software"].items())
        return f"provenance {full}{extra}"
    if node.kind == "receipt" and "frames" in a:
        return f"{node.label} {full}, {a['frames']} frames, {a['milliseconds']} ms"
    if node.kind == "claim":
        license_ = f", license {a['license']}" if a.get("license") else ""
        return f"claim {full}: split {_split_text(a.get('split', {}))}{license_}"
    if node.kind == "person":
        return full
    return f"{node.label} {full}"


def to_tree(graph: ProvenanceGraph) -> list[str]:
    """The graph as an indented tree from the root (box characters); a node reached again is
    shown by its id with "(see above)", so every node appears in full exactly once."""
    root = graph.nodes[graph.root]
    lines = [_tree_text(root)]
    shown = {root.id}

    def walk(node_id: str, prefix: str) -> None:
        edges = graph.out_edges(node_id)
        for i, edge in enumerate(edges):
            last = i == len(edges) - 1
            child = graph.nodes[edge.dst]
            relation = f"{edge.relation} {edge.name}" if edge.name else edge.relation
            again = child.id in shown
            shown_as = (
                child.label if child.label.startswith(child.kind) else f"{child.kind} {child.label}"
            )
            text = f"{shown_as} (see above)" if again else _tree_text(child)
            lines.append(f"{prefix}{'└── ' if last else '├── '}{relation}: {text}")
            if not again:
                shown.add(child.id)
                walk(child.id, prefix + ("    " if last else "│   "))

    walk(root.id, "")
    counts = ", ".join(f"{n} {k}" for k, n in graph.kinds().items())
    lines.append(f"({len(graph.nodes)} nodes: {counts}; {len(graph.edges)} edges)")
    lines.extend(f"note: {note}" for note in graph.notes)
    return lines


# -- JSON and DOT ------------------------------------------------------------------------------


def to_json(graph: ProvenanceGraph) -> dict[str, Any]:
    """The graph as JSON values::

        {"format": "artdag-provenance-graph", "version": 1, "root": ID,
         "truncated": bool, "max_nodes": int, "notes": [str],
         "nodes": [{"id": ID, "kind": KIND, "label": str, "attrs": {...}}],
         "edges": [{"from": ID, "to": ID, "relation": REL, "name"?: str}]}

    Nodes come in discovery order (the root first), edges in the order they were found; ids are
    full CIDs or dids. See the module docstring for kinds and relations."""
    edges: list[dict[str, Any]] = []
    for e in graph.edges:
        edge: dict[str, Any] = {"from": e.src, "to": e.dst, "relation": e.relation}
        if e.name:
            edge["name"] = e.name
        edges.append(edge)
    return {
        "format": JSON_FORMAT,
        "version": 1,
        "root": graph.root,
        "truncated": graph.truncated,
        "max_nodes": graph.max_nodes,
        "notes": list(graph.notes),
        "nodes": [
            {"id": n.id, "kind": n.kind, "label": n.label, "attrs": json_value(n.attrs)}
            for n in graph.nodes.values()
        ],
        "edges": edges,
    }


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as ``\\n``."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def to_dot(graph: ProvenanceGraph) -> str:
    """Graphviz DOT text (``dot -Tsvg``), left to right from the output."""
    lines = [
        "digraph provenance {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    for note in graph.notes:
        lines.append(f"  // {note.replace(chr(10), ' ')}")
    if graph.truncated:
        lines.append(f"  label={_dot_quote(f'truncated at {graph.max_nodes} nodes')};")
    for node in graph.nodes.values():
        label = _dot_quote(f"{node.kind}\n{shown_label(node)}")
        lines.append(
            f"  {_dot_quote(node.id)} [label={label}, fillcolor={_dot_quote(NODE_KINDS[node.kind])}"
            f", tooltip={_dot_quote(node.id)}];"
        )
    for e in graph.edges:
        label = f"{e.relation} {e.name}" if e.name else e.relation
        style = ", style=dashed" if e.relation in PEOPLE_RELATIONS else ""
        lines.append(
            f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)} [label={_dot_quote(label)}{style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
