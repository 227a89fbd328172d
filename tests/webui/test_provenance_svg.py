"""The provenance graph's SVG layout (webui/provenance_svg.py) on hand-made graphs: columns by
distance from the output, people in the last column, edges closing a cycle as back edges, and
boxes that neither overlap nor leave the picture. The drawing over real renders is tested in
tests/provenance/test_graph.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provenance.graph import GraphNode, ProvenanceGraph
from webui.provenance_svg import layout_graph, to_svg


def _graph(edges: list[tuple[str, str, str]], kinds: dict[str, str]) -> ProvenanceGraph:
    graph = ProvenanceGraph(root="out")
    for node_id, kind in kinds.items():
        graph.add_node(GraphNode(node_id, kind, f"{kind} {node_id}"))
    for src, dst, relation in edges:
        graph.add_edge(src, dst, relation)
    return graph


def test_columns_are_the_longest_path_and_people_come_last() -> None:
    graph = _graph(
        [
            ("out", "prov", "provenance"),
            ("prov", "a", "input"),
            ("prov", "b", "input"),
            ("b", "prov_b", "provenance"),
            ("prov_b", "a", "input"),  # a is also two steps further: the longest path wins
            ("prov", "alice", "rendered-by"),
            ("prov_b", "bob", "rendered-by"),
        ],
        {
            "out": "output",
            "prov": "provenance",
            "a": "asset",
            "b": "output",
            "prov_b": "provenance",
            "alice": "person",
            "bob": "person",
        },
    )
    at = layout_graph(graph)
    assert at.depth == {"out": 0, "prov": 1, "b": 2, "prov_b": 3, "a": 4, "alice": 5, "bob": 5}
    assert not at.back
    xs = [at.boxes[n].x for n in ("out", "prov", "b", "prov_b", "a", "alice")]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # one column each, left to right
    alice, bob = at.boxes["alice"], at.boxes["bob"]
    assert abs(alice.y - bob.y) >= 38  # one below the other, never on top of each other
    for box in at.boxes.values():
        assert box.x > 0 and box.x + box.width < at.width
        assert 0 < box.y < at.legend_y < at.height


def test_an_edge_closing_a_cycle_is_a_back_edge_drawn_under_the_boxes() -> None:
    graph = _graph(
        [("out", "prov", "provenance"), ("prov", "b", "input"), ("b", "out", "provenance")],
        {"out": "output", "prov": "provenance", "b": "asset"},
    )
    at = layout_graph(graph)
    assert [(e.src, e.dst) for e in at.back] == [("b", "out")]
    assert at.depth == {"out": 0, "prov": 1, "b": 2}
    svg = to_svg(graph)
    ET.fromstring(svg)
    looped = [line for line in svg.splitlines() if 'stroke="#c0392b"' in line]
    assert len(looped) == 1 and "output out" in looped[0]  # the back edge's tooltip
    assert "a cycle" in svg
