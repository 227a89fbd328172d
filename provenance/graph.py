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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from multiformats import CID

from dag import cid_to_str
from dag.errors import DagError

from .errors import ProvenanceError, RecordError

__all__ = [
    "NODE_KINDS",
    "PEOPLE_RELATIONS",
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

LoadRecord = Callable[[CID], Awaitable[dict[str, Any]]]
FindProvenance = Callable[[CID], Awaitable[CID | None]]
FindClaims = Callable[[CID], Awaitable[list[tuple[CID, dict[str, Any]]]]]
DescribeAsset = Callable[[CID], Awaitable[str | None]]

# kind -> fill colour (the SVG legend and the DOT fillcolor), in legend order
NODE_KINDS: dict[str, str] = {
    "output": "#f4a261",
    "asset": "#e9c46a",
    "provenance": "#a8dadc",
    "recipe": "#b5e48c",
    "effect": "#cdb4db",
    "receipt": "#dee2e6",
    "person": "#90caf9",
    "claim": "#ef9a9a",
}
# relations to a person, drawn dashed (many edges converge on the same few people)
PEOPLE_RELATIONS = frozenset({"rendered-by", "infrastructure", "signed-by", "authored-by"})
JSON_FORMAT = "artdag-provenance-graph"


def short_cid(text: str) -> str:
    """``bafy…q2abcd``: the codec prefix and the tail, which is what tells CIDs apart."""
    return text if len(text) <= 14 else f"{text[:4]}…{text[-6:]}"


def short_did(did: str) -> str:
    """``did:key:z6Mk…abcdef``."""
    prefix = "did:key:z6Mk"
    if did.startswith(prefix) and len(did) > len(prefix) + 8:
        return f"{prefix}…{did[-6:]}"
    return did if len(did) <= 24 else f"{did[:16]}…{did[-6:]}"


def shown_label(node: GraphNode) -> str:
    """The label drawn in a box, whose first line already names the kind."""
    prefix = node.kind + " "
    return node.label[len(prefix) :] if node.label.startswith(prefix) else node.label


@dataclass
class GraphNode:
    id: str  # full CID string, or a did:key for a person
    kind: str  # one of NODE_KINDS
    label: str  # short and readable: an asset's name, an effect's name, a short CID or did
    attrs: dict[str, Any] = field(default_factory=dict)  # JSON values only


@dataclass(frozen=True)
class GraphEdge:
    src: str
    dst: str
    relation: str
    name: str | None = None  # for ``input``: the recipe input bound to it


@dataclass
class ProvenanceGraph:
    root: str
    nodes: dict[str, GraphNode] = field(default_factory=dict)  # in discovery order
    edges: list[GraphEdge] = field(default_factory=list)
    max_nodes: int = 5000
    truncated: bool = False
    notes: list[str] = field(default_factory=list)  # unreadable records, the cap, cycles

    def add_node(self, node: GraphNode) -> bool:
        """Add ``node`` unless it is there already; False (and ``truncated``) at the cap."""
        if node.id in self.nodes:
            return True
        if len(self.nodes) >= self.max_nodes:
            if not self.truncated:
                self.truncated = True
                self.notes.append(f"truncated: the graph stops at {self.max_nodes} nodes")
            return False
        self.nodes[node.id] = node
        return True

    def add_edge(self, src: str, dst: str, relation: str, name: str | None = None) -> None:
        if src in self.nodes and dst in self.nodes:
            edge = GraphEdge(src, dst, relation, name)
            if edge not in self._edge_set:
                self._edge_set.add(edge)
                self.edges.append(edge)

    def out_edges(self, node_id: str) -> list[GraphEdge]:
        return [e for e in self.edges if e.src == node_id]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node.kind] = counts.get(node.kind, 0) + 1
        return counts

    def __post_init__(self) -> None:
        self._edge_set: set[GraphEdge] = set(self.edges)


# -- the walk ----------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """CIDs as strings, bytes as hex, containers recursively: attrs stay JSON values."""
    if isinstance(value, CID):
        return cid_to_str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{role} {bp / 100:g}%" for role, bp in split.items())


async def build_graph(
    root: CID,
    *,
    load_record: LoadRecord,
    find_provenance: FindProvenance,
    find_claims: FindClaims,
    describe_asset: DescribeAsset,
    max_nodes: int = 5000,
) -> ProvenanceGraph:
    """The provenance graph upstream of ``root``: a content CID with a provenance record, a
    provenance record's CID, or a claim's CID (its subject becomes the root).

    ``load_record`` returns a verified record (and raises for a missing or bad one);
    ``find_provenance`` the provenance record of a content CID, if known; ``find_claims`` the
    claims on a CID as ``(claim_cid, record)`` pairs; ``describe_asset`` an asset's name, if
    known. Records below the root that cannot be loaded become nodes with an ``error`` attr
    and a note, so one missing block does not hide the rest of the graph."""
    prov_cid = await find_provenance(root)
    if prov_cid is None and root.codec.name == "dag-cbor":
        record = await load_record(root)
        kind = record.get("type")
        if kind == "provenance":
            prov_cid, root = root, record["output"]
        elif kind == "claim":
            root = record["subject"]
            prov_cid = await find_provenance(root)
        else:
            raise RecordError(
                f"{cid_to_str(root)} is a {kind!r} record, not an output, provenance or claim"
            )
    graph = ProvenanceGraph(root=cid_to_str(root), max_nodes=max_nodes)
    expanded: set[tuple[str, str]] = set()
    queue: list[tuple[str, CID]] = []  # ("content" | "provenance", cid), breadth first

    async def person(did: str) -> str | None:
        return did if graph.add_node(GraphNode(did, "person", short_did(did))) else None

    async def record_node(cid: CID, kind: str, label: Callable[[dict[str, Any]], str]) -> str:
        """Add a node for a record that is only described (recipe, effect, receipt, claim)."""
        key = cid_to_str(cid)
        if key in graph.nodes:
            return key
        try:
            record = await load_record(cid)
        except (ProvenanceError, DagError, LookupError, ValueError) as exc:
            graph.notes.append(f"{kind} {key}: {exc}")
            graph.add_node(GraphNode(key, kind, f"{kind} {short_cid(key)} (unreadable)",
                                     {"error": str(exc)}))  # fmt: skip
            return key
        attrs = {"signer": record.get("signer"), "created": record.get("created")}
        if not graph.add_node(GraphNode(key, kind, label(record), attrs)):
            return key
        if kind == "effect":
            attrs.update(name=record.get("name"), release=record.get("release"))
        elif kind == "recipe":
            attrs.update(name=record.get("name"), nodes=len(record.get("nodes", {})))
        elif kind == "receipt":
            attrs.update(operation=record.get("operation"), frames=record.get("frames"),
                         milliseconds=record.get("milliseconds"),
                         output=_json_value(record.get("output")),
                         renderer=record.get("renderer"))  # fmt: skip
        author = record.get("author") or record.get("renderer")
        if author and await person(author):
            graph.add_edge(key, author, "rendered-by" if kind == "receipt" else "authored-by")
        return key

    async def add_content(cid: CID, provenance: CID | None = None) -> str:
        key = cid_to_str(cid)
        if key in graph.nodes:
            return key
        name = await describe_asset(cid)
        if provenance is None:
            provenance = await find_provenance(cid)
        kind = "output" if provenance is not None or key == graph.root else "asset"
        attrs: dict[str, Any] = {"name": name} if name else {}
        if not graph.add_node(GraphNode(key, kind, name or short_cid(key), attrs)):
            return key
        queue.append(("content", cid))
        if provenance is not None:
            prov_key = cid_to_str(provenance)
            if graph.add_node(
                GraphNode(prov_key, "provenance", f"provenance {short_cid(prov_key)}")
            ):
                graph.add_edge(key, prov_key, "provenance")
                queue.append(("provenance", provenance))
        return key

    async def expand_content(cid: CID) -> None:
        key = cid_to_str(cid)
        for claim_cid, claim in await find_claims(cid):
            claim_key = cid_to_str(claim_cid)
            split = claim.get("split", {})
            label = f"claim {short_cid(claim_key)}"
            attrs = {"split": dict(split), "license": claim.get("license"),
                     "created": claim.get("created"), "signer": claim.get("signer")}  # fmt: skip
            if not graph.add_node(GraphNode(claim_key, "claim", label, _json_value(attrs))):
                break
            graph.add_edge(key, claim_key, "claimed-by")
            if claim.get("signer") and await person(claim["signer"]):
                graph.add_edge(claim_key, claim["signer"], "signed-by")
            if "provenance" in claim:
                prov_key = cid_to_str(claim["provenance"])
                if prov_key not in graph.nodes and graph.add_node(
                    GraphNode(prov_key, "provenance", f"provenance {short_cid(prov_key)}")
                ):
                    queue.append(("provenance", claim["provenance"]))
                graph.add_edge(claim_key, prov_key, "cites")
            for c in claim.get("inputs", []):
                graph.add_edge(claim_key, await add_content(c), "cites")
            for c in claim.get("effects", []):
                graph.add_edge(claim_key, await record_node(c, "effect", _effect_label), "cites")
            if "recipe" in claim:
                recipe_key = await record_node(claim["recipe"], "recipe", _recipe_label)
                graph.add_edge(claim_key, recipe_key, "cites")

    async def expand_provenance(cid: CID) -> None:
        key = cid_to_str(cid)
        node = graph.nodes[key]
        try:
            prov = await load_record(cid)
        except (ProvenanceError, DagError, LookupError, ValueError) as exc:
            graph.notes.append(f"provenance {key}: {exc}")
            node.label += " (unreadable)"
            node.attrs["error"] = str(exc)
            return
        params = prov.get("parameters") or {}
        bound = params.get("inputs", {}) if isinstance(params, dict) else {}
        overrides = params.get("overrides", {}) if isinstance(params, dict) else {}
        node.attrs.update(
            _json_value({
                "output": prov.get("output"), "created": prov.get("created"),
                "signer": prov.get("signer"), "node": prov.get("node"),
                "software": prov.get("software", {}), "overrides": overrides,
                "steps": len(prov.get("steps", [])),
            })
        )  # fmt: skip
        output = cid_to_str(prov["output"])
        if output not in graph.nodes:  # reached through a claim: show what it made
            graph.add_edge(await add_content(prov["output"], cid), key, "provenance")
        if "recipe" in prov:
            graph.add_edge(
                key, await record_node(prov["recipe"], "recipe", _recipe_label), "recipe"
            )
        for effect in prov.get("effects", []):
            effect_key = await record_node(effect, "effect", _effect_label)
            graph.add_edge(key, effect_key, "made-by-effect")
        names: dict[str, str] = {}  # one content may be bound to several recipe inputs
        for k, v in bound.items():
            if isinstance(v, CID):
                names[cid_to_str(v)] = (
                    f"{names[cid_to_str(v)]},{k}" if cid_to_str(v) in names else k
                )
        for input_cid in prov.get("inputs", []):
            input_key = await add_content(input_cid)
            graph.add_edge(key, input_key, "input", names.get(input_key))
        for step in prov.get("steps", []):
            graph.add_edge(key, await record_node(step, "receipt", _receipt_label), "receipt")
        renderer = prov.get("renderer") or prov.get("signer")
        if renderer and await person(renderer):
            graph.add_edge(key, renderer, "rendered-by")
        for volunteer in prov.get("infrastructure", []):
            if await person(volunteer):
                graph.add_edge(key, volunteer, "infrastructure")
        signer = prov.get("signer")
        if signer and signer != renderer and await person(signer):
            graph.add_edge(key, signer, "signed-by")

    await add_content(root, prov_cid)
    while queue:
        what, cid = queue.pop(0)
        if (what, cid_to_str(cid)) in expanded:
            continue
        expanded.add((what, cid_to_str(cid)))
        await (expand_content if what == "content" else expand_provenance)(cid)
    return graph


def _effect_label(record: dict[str, Any]) -> str:
    return f"{record['name']} r{record['release']}"


def _recipe_label(record: dict[str, Any]) -> str:
    return f"recipe '{record['name']}'"


def _receipt_label(record: dict[str, Any]) -> str:
    return f"step {record['operation']}"


# -- text tree ---------------------------------------------------------------------------------


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
            {"id": n.id, "kind": n.kind, "label": n.label, "attrs": _json_value(n.attrs)}
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
