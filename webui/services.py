"""What the web pages need from the node, as a port the daemon fills in.

``webui`` imports nothing from ``daemon`` (the composition root): the daemon builds a
:class:`WebServices` from its services (``daemon/web_services.py``) and hands it to
:func:`webui.add_pages`. Every call returns plain JSON-like data (the same shapes the local
JSON API returns), so pages and tests do not depend on the daemon's classes. A ``None`` field
means the feature is not running on this node (no P2P, no fediverse bridge); its page says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Row", "WebServices"]

Row = dict[str, Any]


@dataclass
class WebServices:
    # -- the node -------------------------------------------------------------------------
    #: ``{"did", "version", "store", "assets", ...}`` plus peers/storage when known.
    status: Callable[[], Awaitable[Row]]
    #: ``(tag, limit, offset) -> [asset rows]`` newest first (``cid, name, size, mime, tags,
    #: record, signer, created``).
    list_assets: Callable[[str | None, int, int], Awaitable[list[Row]]]
    #: one asset row, or None.
    asset: Callable[[str], Awaitable[Row | None]]
    #: ``(chunks, name, tags, mime) -> asset row + {"existed": bool}``.
    add_asset: Callable[[AsyncIterable[bytes], str, list[str], str | None], Awaitable[Row]]
    #: the creator's handle for the header (``@user@domain``) and did.
    identity: Callable[[], Row]
    # -- ownership --------------------------------------------------------------------------
    #: claims on a CID (``cid, claimant, split, license, created, anchored``).
    claims_of: Callable[[str], Awaitable[list[Row]]] | None = None
    #: anchors covering a CID (``batch, status, block_height, time``).
    anchors_of: Callable[[str], Awaitable[list[Row]]] | None = None
    # -- rendering ----------------------------------------------------------------------------
    #: the built-in effects: ``name, description, params: [{name, type, default, ...}]``.
    effects: Callable[[], list[Row]] | None = None
    #: ``(recipe_doc, inputs, on_event) -> {"recipe": cid, "steps": n}``: start a render of a
    #: recipe document (the YAML recipe format as a map: name, inputs, nodes, output) on inputs
    #: bound by name (``{input name: asset CID}``). Awaiting it validates the recipe and the
    #: inputs (raises ValueError with the renderer's one-line message; nothing starts) and
    #: stores the signed recipe; the render itself then runs in the daemon's nursery and calls
    #: ``on_event`` (synchronously, from that task) with ``{"event": "queued"}``,
    #: ``{"event": "progress", "frames": n}`` (repeated), then exactly one of
    #: ``{"event": "done", "output": cid, "provenance": cid, "recipe": cid, "rendered": n,
    #: "cached": n, "frames": n, "seconds": s}`` or ``{"event": "error", "message": text}``.
    render: Callable[[Row, dict[str, str], Callable[[Row], None]], Awaitable[Row]] | None = None
    # -- the render market --------------------------------------------------------------------
    jobs: Callable[[str | None, int], Awaitable[list[Row]]] | None = None
    volunteers: Callable[[], Awaitable[list[Row]]] | None = None
    # -- the fediverse ----------------------------------------------------------------------
    followers: Callable[[], Awaitable[Row]] | None = None
    deliveries: Callable[[str | None, int], Awaitable[Row]] | None = None
    publish: Callable[[str, str, str | None], Awaitable[Row]] | None = None
    block_domain: Callable[[str], Awaitable[str]] | None = None
    unblock_domain: Callable[[str], Awaitable[bool]] | None = None
    # -- settings -----------------------------------------------------------------------------
    pins: Callable[[], Awaitable[list[Row]]] | None = None
    pin: Callable[[str], Awaitable[None]] | None = None
    unpin: Callable[[str], Awaitable[None]] | None = None
    #: the pinning policies and the store's usage against its quota, for the settings page
    pin_policy: Callable[[], Awaitable[Row]] | None = None
    #: collect garbage now; the report (``removed``, ``freed``, ``seconds``, ...)
    collect_garbage: Callable[[], Awaitable[Row]] | None = None
    #: the volunteer capacity policy as ``{key: value}`` (``[volunteer]`` keys).
    volunteer_policy: Callable[[], Row] | None = None
    #: write new ``[volunteer]`` values (to config.toml; takes effect at the next start);
    #: raises ValueError naming a bad key.
    set_volunteer_policy: Callable[[Row], Awaitable[Row]] | None = None
