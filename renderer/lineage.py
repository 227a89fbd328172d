"""The lineage of a rendered output as a tree: output <- recipe, effects, inputs (recursively),
renderer, software, step receipts.

:func:`collect_lineage` walks provenance records through two async lookups given by the caller
(load a verified record by CID; find the provenance record of an output CID), so it works the
same over a local node or anything else that can fetch records. :func:`format_tree` is pure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dag import CID, cid_to_str

__all__ = ["LineageNode", "collect_lineage", "format_tree"]

LoadRecord = Callable[[CID], Awaitable[dict[str, Any]]]
FindProvenance = Callable[[CID], Awaitable[CID | None]]
DescribeAsset = Callable[[CID], Awaitable[str | None]]


@dataclass
class LineageNode:
    label: str
    children: list[LineageNode] = field(default_factory=list)


async def collect_lineage(
    output: CID,
    *,
    load_record: LoadRecord,
    find_provenance: FindProvenance,
    describe_asset: DescribeAsset,
    max_depth: int = 8,
) -> LineageNode:
    """The lineage tree of ``output`` (a rendered output or a provenance record's CID)."""
    seen: set[str] = set()

    async def node_for(cid: CID, depth: int, name: str | None = None) -> LineageNode:
        shown = cid_to_str(cid)
        prov_cid = await find_provenance(cid)
        prov: dict[str, Any] | None = None
        if prov_cid is None and cid.codec.name == "dag-cbor":
            record = await load_record(cid)
            if record.get("type") == "provenance":
                prov_cid, prov = cid, record
                cid, shown = record["output"], cid_to_str(record["output"])
        about = await describe_asset(cid)
        label = " ".join(x for x in (name, shown, f"({about})" if about else None) if x)
        if prov_cid is None:
            return LineageNode(label + ("" if about else "  (source; no provenance here)"))
        if shown in seen or depth >= max_depth:
            return LineageNode(label + "  (see above)")
        seen.add(shown)
        prov = prov or await load_record(prov_cid)
        root = LineageNode(label)
        root.children.append(
            LineageNode(
                f"provenance {cid_to_str(prov_cid)}, signed by {prov['signer']}, {prov['created']}"
            )
        )
        if "recipe" in prov:
            recipe = await load_record(prov["recipe"])
            root.children.append(
                LineageNode(f"recipe {recipe['name']!r} {cid_to_str(prov['recipe'])}")
            )
        effects = LineageNode("effects")
        for effect_cid in prov.get("effects", []):
            effect = await load_record(effect_cid)
            effects.children.append(
                LineageNode(f"{effect['name']} r{effect['release']} {cid_to_str(effect_cid)}")
            )
        root.children.append(effects)
        params = prov.get("parameters", {})
        bound = params.get("inputs", {}) if isinstance(params, dict) else {}
        names = {cid_to_str(v): k for k, v in bound.items() if isinstance(v, CID)}
        overrides = params.get("overrides", {}) if isinstance(params, dict) else {}
        if overrides:
            root.children.append(
                LineageNode("parameters " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
            )
        inputs = LineageNode("inputs")
        for input_cid in prov["inputs"]:
            inputs.children.append(
                await node_for(input_cid, depth + 1, names.get(cid_to_str(input_cid)))
            )
        root.children.append(inputs)
        root.children.append(LineageNode(f"steps: {len(prov.get('steps', []))} signed receipts"))
        root.children.append(
            LineageNode(
                f"renderer {prov.get('renderer', prov['signer'])} on {prov.get('node', '?')}"
            )
        )
        software = ", ".join(f"{k} {v}" for k, v in prov["software"].items())
        root.children.append(LineageNode(f"software {software}"))
        return root

    return await node_for(output, 0)


def format_tree(node: LineageNode) -> list[str]:
    """Lines of the tree drawn with box characters, the root first."""
    lines = [node.label]

    def walk(children: list[LineageNode], prefix: str) -> None:
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.label}")
            walk(child.children, prefix + ("    " if last else "│   "))

    walk(node.children, "")
    return lines
