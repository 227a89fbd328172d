"""The provenance graph (provenance/graph.py; the SVG is webui/provenance_svg.py's) over real
renders: a derived output rendered from another render's output, walked back through every
provenance record, recipe, effect, step receipt, person and claim, and rendered as tree, JSON,
DOT and SVG; then the CLI (``artdag provenance CID --format svg|json``) in a temporary home.
Cycle and node-cap guards are checked over hand-made signed records (a cycle cannot come out
of a real render)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import dag
from dag import CID, cid_to_str
from provenance import Identity, make_provenance_record, sign_record, utc_timestamp
from provenance.graph import (
    NODE_KINDS,
    ProvenanceGraph,
    build_graph,
    short_cid,
    to_dot,
    to_json,
    to_tree,
)
from renderer import BUILTIN_AUTHOR, effect_cid, load_recipe_yaml
from tests.harness.cli_helpers import Home
from tests.harness.media import make_video
from tests.harness.renderer_fixtures import MediaSet, add, render_service
from webui.provenance_svg import to_svg

pytestmark = pytest.mark.ffmpeg

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SVG = "{http://www.w3.org/2000/svg}"
TWO_STEP = """
name: two-step
inputs: [a, b]
nodes:
  small: {effect: resize, input: b, params: {width: 320, height: 180}}
  joined: {effect: sequence, inputs: [a, small]}
output: joined
"""


async def _no_claims(_cid: CID) -> list[tuple[CID, dict[str, Any]]]:
    return []


def _check_svg(graph: ProvenanceGraph, text: str) -> ET.Element:
    root = ET.fromstring(text)  # well-formed XML or this raises
    assert root.tag == f"{SVG}svg"
    boxes = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(boxes) == len(graph.nodes)
    for g in boxes:
        assert len(g.findall(f"{SVG}rect")) == 1
    titles = [g.findtext(f"{SVG}title") or "" for g in boxes]
    texts = {t.text for t in root.iter(f"{SVG}text")}
    for node in graph.nodes.values():
        assert node.label.removeprefix(node.kind + " ") in texts, node.label  # kind: line 1
        assert any(t.startswith(f"{node.kind} {node.id}") for t in titles), node.id
    return root


async def test_graph_of_a_derived_render(tmp_path: Path, media: MediaSet) -> None:
    """clip --double-speed--> fast; (fast, red) --two-step--> final: the graph of final reaches
    back through fast's own provenance to the source clip, and names everyone involved."""
    async with render_service(tmp_path) as s:
        clip, red = await add(s, media.clip), await add(s, media.red)
        first = await s.render(str(EXAMPLES / "single-effect.yaml"), {"clip": clip})
        recipe = await s.add_recipe(load_recipe_yaml(TWO_STEP))
        final = await s.render(cid_to_str(recipe), {"a": first.output, "b": red})

        # a real signed claim on the intermediate output, found through the claims callback
        claimant = Identity.generate()
        claim = sign_record(
            {"type": "claim", "version": 1, "subject": first.output,
             "provenance": first.provenance, "split": {"footage": 6000, "effects": 4000},
             "license": "CC-BY-4.0", "created": utc_timestamp()},
            claimant,
        )  # fmt: skip
        claim_cid = dag.record_block(claim).cid
        names = {
            cid_to_str(clip): "clip.mkv",
            cid_to_str(red): "red.mkv",
            cid_to_str(final.output): "final.mp4",
        }

        async def claims(cid: CID) -> list[tuple[CID, dict[str, Any]]]:
            return [(claim_cid, claim)] if cid == first.output else []

        async def describe(cid: CID) -> str | None:
            return names.get(cid_to_str(cid))

        graph = await build_graph(
            final.output,
            load_record=s.record,
            find_provenance=s.provenance_of,
            find_claims=claims,
            describe_asset=describe,
        )
        # the service's own graph (no index here, so no names; no claims wired)
        plain = await s.provenance_graph(final.provenance)

    nodes, edges = graph.nodes, {(e.src, e.dst, e.relation) for e in graph.edges}
    out, fast = cid_to_str(final.output), cid_to_str(first.output)
    assert graph.root == out and nodes[out].kind == "output" and nodes[out].label == "final.mp4"
    assert nodes[fast].kind == "output"  # an input that is itself derived
    assert nodes[cid_to_str(clip)].kind == "asset" and nodes[cid_to_str(red)].kind == "asset"
    assert nodes[cid_to_str(clip)].label == "clip.mkv"
    assert (out, cid_to_str(final.provenance), "provenance") in edges
    assert (cid_to_str(final.provenance), fast, "input") in edges
    assert (cid_to_str(final.provenance), cid_to_str(red), "input") in edges
    assert (fast, cid_to_str(first.provenance), "provenance") in edges
    assert (cid_to_str(first.provenance), cid_to_str(clip), "input") in edges
    assert (cid_to_str(final.provenance), cid_to_str(recipe), "recipe") in edges
    assert nodes[cid_to_str(recipe)].label == "recipe 'two-step'"
    assert (cid_to_str(first.provenance), cid_to_str(first.recipe), "recipe") in edges
    for name, prov in (("resize", final), ("sequence", final), ("speed", first)):
        assert (
            cid_to_str(prov.provenance),
            cid_to_str(effect_cid(name)),
            "made-by-effect",
        ) in edges
        assert nodes[cid_to_str(effect_cid(name))].label == f"{name} r1"
        assert (cid_to_str(effect_cid(name)), BUILTIN_AUTHOR.did, "authored-by") in edges
    receipts = [n for n in nodes.values() if n.kind == "receipt"]
    assert sorted(r.label for r in receipts) == ["step resize", "step sequence", "step speed"]
    renderer = s.identity.did
    assert nodes[renderer].kind == "person" and nodes[renderer].label.endswith(renderer[-6:])
    assert (cid_to_str(final.provenance), renderer, "rendered-by") in edges
    assert all((r.id, renderer, "rendered-by") in edges for r in receipts)
    assert (cid_to_str(recipe), renderer, "authored-by") in edges  # the recipe designer
    assert (fast, cid_to_str(claim_cid), "claimed-by") in edges
    assert (cid_to_str(claim_cid), claimant.did, "signed-by") in edges
    assert (cid_to_str(claim_cid), cid_to_str(first.provenance), "cites") in edges
    assert not graph.truncated and not graph.notes
    assert set(plain.nodes) == set(nodes) - {cid_to_str(claim_cid), claimant.did}

    # tree: every node in full once, the root first
    tree = to_tree(graph)
    text = "\n".join(tree)
    assert tree[0] == f"{out} (asset 'final.mp4')"
    for node in nodes.values():
        assert node.id in text
    assert f"input a: {fast}" in text and f"input b: {red} (asset 'red.mkv')  [source]" in text
    assert (
        "claim " + cid_to_str(claim_cid) + ": split footage 60%, effects 40%, license CC-BY-4.0"
        in text
    )
    assert "recipe 'double-speed'" in text and "speed r1" in text and "ffmpeg" in text
    assert re.search(r"step resize \S+, \d+ frames, \d+ ms", text)
    assert tree[-1].startswith(f"({len(nodes)} nodes: ")

    # json: the documented shape, and it survives a round trip through json text
    doc = json.loads(json.dumps(to_json(graph)))
    assert doc["format"] == "artdag-provenance-graph" and doc["version"] == 1
    assert doc["root"] == out and doc["truncated"] is False
    assert [n["id"] for n in doc["nodes"]] == list(nodes)
    assert {(e["from"], e["to"], e["relation"]) for e in doc["edges"]} == edges
    assert {
        "from": cid_to_str(final.provenance),
        "to": fast,
        "relation": "input",
        "name": "a",
    } in doc["edges"]
    prov_attrs = next(n["attrs"] for n in doc["nodes"] if n["id"] == cid_to_str(final.provenance))
    assert prov_attrs["output"] == out and prov_attrs["steps"] == 2 and prov_attrs["software"]
    claim_attrs = next(n["attrs"] for n in doc["nodes"] if n["kind"] == "claim")
    assert claim_attrs["split"] == {"footage": 6000, "effects": 4000}

    # dot: one statement per node and per edge, ids quoted
    dot = to_dot(graph)
    assert dot.startswith("digraph provenance {") and dot.rstrip().endswith("}")
    for node in nodes.values():
        assert re.search(rf'^  "{re.escape(node.id)}" \[label=', dot, re.M)
    assert dot.count(" -> ") == len(graph.edges)

    # svg: well formed, one box per node, every label as text, full CIDs in tooltips
    svg = to_svg(graph)
    (tmp_path / "graph.svg").write_text(svg)
    root = _check_svg(graph, svg)
    legend = [t.text for g in root.iter(f"{SVG}g") if g.get("class") == "legend" for t in g]
    assert set(NODE_KINDS) <= set(legend)
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(arrows) == len(graph.edges)


def _signed(record: dict[str, Any], who: Identity) -> tuple[CID, dict[str, Any]]:
    signed = sign_record(record, who)
    return dag.record_block(signed).cid, signed


async def _graph_over(
    records: dict[str, dict[str, Any]], provenance: dict[str, CID], root: CID, **kw: Any
) -> ProvenanceGraph:
    async def load(cid: CID) -> dict[str, Any]:
        return records[cid_to_str(cid)]

    async def find(cid: CID) -> CID | None:
        return provenance.get(cid_to_str(cid))

    async def describe(_cid: CID) -> str | None:
        return None

    return await build_graph(
        root, load_record=load, find_provenance=find, find_claims=_no_claims,
        describe_asset=describe, **kw,
    )  # fmt: skip


def _content(n: int) -> CID:
    return dag.Block.encode(f"content {n}".encode(), codec="raw").cid


async def test_a_record_claiming_a_cycle_terminates_and_draws() -> None:
    """A signed record may say an output is its own (indirect) input; the walk ends and the SVG
    lays the closing edge as a back edge."""
    who = Identity.generate()
    a, b = _content(1), _content(2)
    pa_cid, pa = _signed(make_provenance_record(output=a, inputs=[b], software={"x": "1"}), who)
    pb_cid, pb = _signed(make_provenance_record(output=b, inputs=[a], software={"x": "1"}), who)
    graph = await _graph_over(
        {cid_to_str(pa_cid): pa, cid_to_str(pb_cid): pb},
        {cid_to_str(a): pa_cid, cid_to_str(b): pb_cid},
        a,
    )
    assert set(graph.nodes) == {
        cid_to_str(a),
        cid_to_str(b),
        cid_to_str(pa_cid),
        cid_to_str(pb_cid),
        who.did,
    }
    assert (cid_to_str(pb_cid), cid_to_str(a), "input") in {
        (e.src, e.dst, e.relation) for e in graph.edges
    }
    text = "\n".join(to_tree(graph))
    assert "(see above)" in text
    svg = to_svg(graph)
    _check_svg(graph, svg)
    assert 'stroke="#c0392b"' in svg  # the back edge


async def test_the_node_cap_truncates_with_a_note() -> None:
    who = Identity.generate()
    inputs = [_content(i) for i in range(40)]
    out = _content(999)
    prov_cid, prov = _signed(
        make_provenance_record(output=out, inputs=inputs, software={"x": "1"}), who
    )
    graph = await _graph_over(
        {cid_to_str(prov_cid): prov}, {cid_to_str(out): prov_cid}, prov_cid, max_nodes=10
    )
    assert graph.root == cid_to_str(out)  # a provenance record's CID names its output
    assert len(graph.nodes) == 10 and graph.truncated
    assert "truncated: the graph stops at 10 nodes" in graph.notes
    assert to_json(graph)["truncated"] is True
    assert to_tree(graph)[-1] == "note: truncated: the graph stops at 10 nodes"
    assert "truncated at 10 nodes" in to_dot(graph)
    svg = to_svg(graph)
    _check_svg(graph, svg)
    assert "TRUNCATED at 10 nodes" in svg


async def test_missing_records_become_marked_nodes() -> None:
    who = Identity.generate()
    out, recipe = _content(1), dag.record_block({"type": "gone"}).cid
    prov_cid, prov = _signed(
        make_provenance_record(output=out, inputs=[], recipe=recipe, software={"x": "1"}), who
    )
    graph = await _graph_over({cid_to_str(prov_cid): prov}, {cid_to_str(out): prov_cid}, out)
    assert graph.nodes[cid_to_str(recipe)].attrs["error"]
    assert graph.notes and graph.notes[0].startswith(f"recipe {recipe}")
    assert f"recipe {short_cid(cid_to_str(recipe))} (unreadable)" in "\n".join(to_tree(graph))


def test_dot_escapes_quotes_and_backslashes() -> None:
    from provenance.graph import GraphNode

    graph = ProvenanceGraph(root="x")
    graph.add_node(GraphNode("x", "asset", 'say "hi" \\ bye\nnext'))
    dot = to_dot(graph)
    assert 'label="asset\\nsay \\"hi\\" \\\\ bye\\nnext"' in dot
    svg = to_svg(graph)
    assert "say &quot;hi&quot;" in svg or 'say "hi"' in svg
    ET.fromstring(svg)


def test_cli_provenance_formats(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    clip = home.last_line("add", str(make_video(tmp_path / "clip.mkv", seconds=1)))
    output = home.last_line(
        "render", str(EXAMPLES / "single-effect.yaml"), "--input", f"clip={clip}"
    )
    svg_path = tmp_path / "x.svg"
    svg_path.write_bytes(home.run("provenance", output, "--format", "svg").stdout)
    root = ET.parse(svg_path).getroot()
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert "clip.mkv" in texts and "double-speed.mp4" in texts and "speed r1" in texts

    doc = json.loads(home.out("provenance", output, "--format", "json"))
    assert doc["root"] == output
    assert {n["kind"] for n in doc["nodes"]} == {
        "output", "asset", "provenance", "recipe", "effect", "receipt", "person",
    }  # fmt: skip
    tree = home.out("provenance", output, "--format", "tree")
    assert tree.splitlines()[0] == f"{output} (asset 'double-speed.mp4')"
    assert f"input clip: {clip} (asset 'clip.mkv')" in tree
    dot = home.out("provenance", output, "--format", "dot")
    assert dot.count('[label="') == len(doc["nodes"]) + len(doc["edges"])
    default = home.out("provenance", output)  # the lineage summary, unchanged
    assert default.splitlines()[0].startswith(output) and "recipe 'double-speed'" in default
