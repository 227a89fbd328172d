"""What the web pages need from the node: one small port per feature, as Protocols.

``webui`` imports nothing from ``daemon`` (the composition root): the daemon hands
:func:`webui.add_pages` a :class:`WebServices` whose members are small objects satisfying these
Protocols (adapters over the node API, ``daemon/http/web.py``). Every call returns plain
JSON-like data (the shapes the local JSON API returns), so pages and tests do not depend on the
daemon's classes. A ``None`` member means the feature is not running on this node (no render
market without P2P, no fediverse bridge when it is off); its page says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AssetsPort",
    "FediversePort",
    "MarketPort",
    "NodePort",
    "OnRenderEvent",
    "OwnershipPort",
    "PinsPort",
    "RenderPort",
    "Row",
    "Tags",
    "VolunteerPolicyPort",
    "WebServices",
]

Row = dict[str, Any]
OnRenderEvent = Callable[[Row], None]
Tags = list[str]  # (named: a port's ``list`` method hides the builtin in its class body)


class NodePort(Protocol):
    async def status(self) -> Row:
        """``{"did", "version", "store", "assets", ...}`` plus storage, peers and the
        bridge's followers and pending deliveries when known (else None)."""
        ...

    def identity(self) -> Row:
        """The creator for the header: ``did``, ``user``, ``handle`` (``@user@domain``) and
        ``actor`` (None without the bridge)."""
        ...


class AssetsPort(Protocol):
    async def list(self, tag: str | None, limit: int, offset: int) -> list[Row]:
        """Asset rows newest first (``cid, name, size, mime, tags, record, signer, created``)."""
        ...

    async def get(self, cid: str) -> Row | None:
        """One asset row, or None."""
        ...

    async def add(
        self, chunks: AsyncIterable[bytes], name: str, tags: Tags, mime: str | None
    ) -> Row:
        """Store a file: its asset row plus ``{"existed": bool}``."""
        ...


class OwnershipPort(Protocol):
    async def claims_of(self, cid: str) -> list[Row]:
        """Claims on a CID, oldest first (``cid, claimant, split, license, created,
        anchored``; ``split`` in percent per role)."""
        ...

    async def anchors_of(self, cid: str) -> list[Row]:
        """Anchors covering a CID, its asset record or a claim on it, each once (``batch,
        status, block_height, time, covers, leaf``)."""
        ...


class RenderPort(Protocol):
    def effects(self) -> list[Row]:
        """The built-in effects: ``name, description, inputs, variadic, params: [{name, type,
        doc, default, min, max, choices}]``."""
        ...

    async def render(self, doc: Row, inputs: dict[str, str], on_event: OnRenderEvent) -> Row:
        """Start a render of a recipe document (the YAML recipe format as a map: name,
        inputs, nodes, output) on inputs bound by name (``{input name: asset CID}``):
        ``{"recipe": cid, "steps": n}``.

        Awaiting it validates the recipe and the inputs (raises ValueError with the
        renderer's one-line message; nothing starts) and stores the signed recipe; the render
        itself then runs in the daemon's nursery and calls ``on_event`` (synchronously, from
        that task) with ``{"event": "queued"}``, ``{"event": "progress", "frames": n}``
        (repeated), then exactly one of ``{"event": "done", "output": cid, "provenance": cid,
        "recipe": cid, "rendered": n, "cached": n, "frames": n, "seconds": s}`` or
        ``{"event": "error", "message": text}``."""
        ...


class MarketPort(Protocol):
    async def jobs(self, role: str | None, limit: int) -> list[Row]:
        """The market's jobs newest first (``requester`` or ``volunteer`` only, if given)."""
        ...

    async def volunteers(self) -> list[Row]:
        """The volunteers dealt with, best reputation first, with their credit."""
        ...


class FediversePort(Protocol):
    async def followers(self) -> Row:
        """``handle, actor, count, followers: [{actor, inbox, since}], blocked_domains,
        config_blocked_domains``."""
        ...

    async def deliveries(self, state: str | None, limit: int) -> Row:
        """``{"stats": {state: n, ..., "next_due"}, "deliveries": [rows]}``; ValueError for
        an unknown state."""
        ...

    async def publish(self, cid: str, text: str, alt: str | None) -> Row:
        """Post an asset to the followers: ``activity, note, queued, already_published``.
        Raises ValueError (a bad CID, not an asset, text too long)."""
        ...

    async def block(self, domain: str) -> str:
        """Block a domain and its subdomains: the normalised name; ValueError for a bad one."""
        ...

    async def unblock(self, domain: str) -> bool:
        """True if there was a stored block; ValueError for a bad domain."""
        ...


class PinsPort(Protocol):
    async def list(self) -> list[Row]:
        """Pins, each with its reasons and what it is (assets first)."""
        ...

    async def add(self, cid: str) -> None:
        """Pin for the operator (``explicit``); ValueError for a bad CID or one the node
        cannot get."""
        ...

    async def remove(self, cid: str) -> None:
        """Drop the operator's reasons; ValueError for a bad CID or one not pinned so."""
        ...

    async def policy(self) -> Row:
        """The pinning policies and the store's usage against its quota."""
        ...

    async def collect(self) -> Row:
        """Collect garbage now: the report (``removed``, ``freed``, ``seconds``, ...)."""
        ...


class VolunteerPolicyPort(Protocol):
    def current(self) -> Row:
        """The volunteer capacity policy as ``{key: value}`` (``[volunteer]`` keys)."""
        ...

    async def save(self, values: Row) -> Row:
        """Write new ``[volunteer]`` values to config.toml (they take effect at the next
        start); raises ValueError naming a bad key. The policy as saved."""
        ...


@dataclass(frozen=True)
class WebServices:
    """The ports the pages use, one per feature; ``None``: not running on this node."""

    node: NodePort
    assets: AssetsPort
    pins: PinsPort
    volunteer_policy: VolunteerPolicyPort
    render: RenderPort | None = None
    ownership: OwnershipPort | None = None
    market: MarketPort | None = None
    fediverse: FediversePort | None = None
