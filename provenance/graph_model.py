"""The provenance graph as data: :class:`ProvenanceGraph` of :class:`GraphNode` and
:class:`GraphEdge`, the node kinds and their colours, and the short labels every rendering uses.

:mod:`provenance.graph` describes the model (kinds, relations) and re-exports these names;
:mod:`provenance.graph_walk` builds a graph from records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from multiformats import CID

from dag import cid_to_str

__all__ = [
    "NODE_KINDS",
    "PEOPLE_RELATIONS",
    "GraphEdge",
    "GraphNode",
    "ProvenanceGraph",
    "json_value",
    "short_cid",
    "short_did",
    "shown_label",
]

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


def json_value(value: Any) -> Any:
    """CIDs as strings, bytes as hex, containers recursively: attrs stay JSON values."""
    if isinstance(value, CID):
        return cid_to_str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value
