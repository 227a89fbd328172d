"""The daemon's services as the web UI's port (:class:`webui.WebServices`).

Thin adapters: each field calls the same service the CLI and the JSON API call, and returns the
JSON shapes the API returns. Features not running on this node (no market without P2P, no
bridge when disabled) are left ``None`` and their pages say so.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import AsyncIterable
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import tomli_w
import trio

from activitypub_bridge import DeliveryError
from daemon.config import ConfigError, VolunteerConfig, load_config
from daemon.core.pins.service import PinService
from dag import StoreUsage, cid_to_str, parse_cid
from webui import WebServices

if TYPE_CHECKING:
    from daemon.core.fediverse import ActivityPubService
    from daemon.core.node import Node
    from daemon.core.ownership.anchors import AnchorService
    from daemon.core.ownership.claims import ClaimsService

__all__ = ["web_services"]

Row = dict[str, Any]


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def web_services(
    node: Node,
    *,
    claims: ClaimsService | None = None,
    anchors: AnchorService | None = None,
    activitypub: ActivityPubService | None = None,
    render: Any = None,
    pins: PinService | None = None,
) -> WebServices:
    """``render`` is the recipe page's render function (``daemon.core.render.web``), if any;
    ``pins`` the node's pin service (required)."""
    config = node.config
    sizes = _CachedUsage(node.store)

    async def status() -> Row:
        data = await node.status()
        usage = await trio.to_thread.run_sync(shutil.disk_usage, config.home)
        stored = (await sizes.get()).bytes
        data |= {
            "storage": stored,
            "storage_human": _human(stored),
            "disk_free_human": _human(usage.free),
            "peers": None,
            "peer_id": None,
            "followers": None,
            "deliveries_pending": None,
        }
        if node.network is not None:
            data["peers"] = len(node.network.peers())
            data["peer_id"] = node.network.info().peer_id
        if activitypub is not None:
            count = await trio.to_thread.run_sync(
                activitypub.followers.count, activitypub.creator.username
            )
            stats = await trio.to_thread.run_sync(activitypub.queue.stats)
            data["followers"] = count
            data["deliveries_pending"] = sum(
                n
                for state, n in stats.counts.items()
                if str(state) != "delivered" and str(state) != "dead"
            )
        return data

    async def list_assets(tag: str | None, limit: int, offset: int) -> list[Row]:
        return [row.to_json() for row in await node.assets(tag, limit, offset)]

    async def asset(cid: str) -> Row | None:
        row = await node.asset(parse_cid(cid))
        return None if row is None else row.to_json()

    async def add_asset(
        chunks: AsyncIterable[bytes], name: str, tags: list[str], mime: str | None
    ) -> Row:
        added = await node.add_stream(chunks, name=name, tags=tags, mime=mime)
        sizes.stale()
        return added.asset.to_json() | {"existed": added.existed}

    def identity() -> Row:
        site = config.bridge_site()
        return {
            "did": node.did,
            "user": config.node.user,
            "handle": f"@{config.node.user}@{site.domain}",
            "actor": site.actor_id(config.node.user) if activitypub is not None else None,
        }

    services = WebServices(
        status=status,
        list_assets=list_assets,
        asset=asset,
        add_asset=add_asset,
        identity=identity,
        render=render,
    )

    if claims is not None:
        claims_service = claims

        async def claims_of(cid: str) -> list[Row]:
            """Claims on ``cid``, oldest first; ``split`` in percent per role."""
            found = await claims_service.claims(parse_cid(cid))
            out = []
            for claim_cid, record in found:
                anchored = None
                if anchors is not None:
                    anchored = await trio.to_thread.run_sync(anchors.earliest_time, claim_cid)
                out.append(
                    {
                        "cid": claim_cid,
                        "claimant": record.get("signer"),
                        "split": {k: v / 100 for k, v in (record.get("split") or {}).items()},
                        "license": record.get("license"),
                        "created": record.get("created"),
                        "anchored": _utc(anchored) if anchored is not None else None,
                    }
                )
            return sorted(out, key=lambda r: str(r["created"] or ""))

        services.claims_of = claims_of

    if anchors is not None:
        anchor_service = anchors

        async def anchors_of(cid: str) -> list[Row]:
            """Anchors covering ``cid`` itself, its asset record or a claim on it (the
            anchored leaves are records, not the content), each once, with ``covers``."""
            text = cid_to_str(parse_cid(cid))
            covered: list[tuple[str, str]] = [(text, "content")]
            row = await node.asset(text)
            if row is not None:
                covered.append((row.record, "asset record"))
            if claims is not None:
                covered += [(c, "claim") for c, _ in await claims.claims(parse_cid(text))]
            out: dict[str, Row] = {}
            for leaf, what in covered:
                found = await trio.to_thread.run_sync(anchor_service.anchor_of, leaf)
                if found is not None and found.record not in out:
                    out[found.record] = found.to_json() | {
                        "covers": what,
                        "leaf": leaf,
                        "time": _utc(found.block_time) if found.block_time else None,
                    }
            return list(out.values())

        services.anchors_of = anchors_of

    from renderer.effects import BUILTIN_EFFECTS

    def effects() -> list[Row]:
        return [
            {
                "name": e.name,
                "description": e.description,
                "inputs": [{"name": n, "kind": k} for n, k in e.inputs],
                "variadic": e.variadic,
                "params": [
                    {
                        "name": name,
                        "type": spec.type,
                        "doc": spec.doc,
                        "default": spec.default,
                        "min": spec.min,
                        "max": spec.max,
                        "choices": list(spec.choices) if spec.choices else None,
                    }
                    for name, spec in e.params.items()
                ],
            }
            for e in BUILTIN_EFFECTS.values()
        ]

    services.effects = effects

    if node.market_store is not None:
        store = node.market_store

        async def jobs(role: str | None, limit: int) -> list[Row]:
            rows = await trio.to_thread.run_sync(store.jobs, role, limit)
            return [r.to_json() for r in rows]

        async def volunteers() -> list[Row]:
            rows = await trio.to_thread.run_sync(store.volunteers)
            return [r.to_json(config.market.trust_after) for r in rows]

        services.jobs, services.volunteers = jobs, volunteers

    if activitypub is not None:
        ap = activitypub

        async def followers() -> Row:
            view = await ap.followers_view()
            for row in view["followers"]:
                row["inbox"] = row.pop("shared_inbox") or row["inbox"]
                row["since"] = _utc(row["since"])
            return view

        async def deliveries(state: str | None, limit: int) -> Row:
            """``{"stats": {state: n, ..., "next_due"}, "deliveries": [rows]}``; ValueError
            for an unknown state."""
            try:
                return await ap.deliveries(state or None, max(1, min(limit, 1000)))
            except DeliveryError as exc:
                raise ValueError(str(exc)) from None

        async def publish(cid: str, text: str, alt: str | None) -> Row:
            """Raises ValueError (a bad CID, not an asset, text too long)."""
            return (await ap.publish(cid, text, alt)).to_json()

        async def block_domain(domain: str) -> str:
            """The normalised block; ValueError for a bad domain."""
            return await ap.block(domain)

        async def unblock_domain(domain: str) -> bool:
            """True if there was a stored block; ValueError for a bad domain."""
            return await ap.unblock(domain)

        services.followers, services.deliveries, services.publish = followers, deliveries, publish
        services.block_domain, services.unblock_domain = block_domain, unblock_domain

    if pins is None:  # F2: one PinService per node, from daemon.services.Services.pins()
        raise ValueError("web_services needs the node's PinService")
    pin_service = pins

    async def list_pins() -> list[Row]:
        """Pins, each with its reasons and what it is (assets first)."""
        return [view.to_json() for view in await pin_service.views()]

    async def pin(cid: str) -> None:
        """Pin for the operator (``explicit``); ValueError for a bad CID or one the node
        cannot get."""
        await pin_service.add(cid)

    async def unpin(cid: str) -> None:
        """Drop the operator's reasons; ValueError for a bad CID or one not pinned so."""
        await pin_service.remove(cid)

    async def pin_policy() -> Row:
        usage = await sizes.get()
        last = pin_service.last_round
        return {
            "follow_creators": list(config.pinning.follow_creators),
            "popular_count": config.pinning.popular_count,
            "quota": _human(config.pinning.quota_bytes) if config.pinning.quota_bytes else None,
            "quota_percent": round(100 * usage.bytes / config.pinning.quota_bytes)
            if config.pinning.quota_bytes
            else None,
            "usage": _human(usage.bytes),
            "blocks": usage.blocks,
            "last_round": last.to_json() if last else None,
            "last_gc": pin_service.last_gc,
            "gc_freed": _human(int(pin_service.last_gc["freed_bytes"]))
            if pin_service.last_gc
            else None,
        }

    async def collect_garbage() -> Row:
        report = (await pin_service.collect()).to_json()
        sizes.stale()
        return report | {"freed": _human(int(report["freed_bytes"]))}

    services.pin_policy, services.collect_garbage = pin_policy, collect_garbage
    services.pins, services.pin, services.unpin = list_pins, pin, unpin

    keys = [f.name for f in fields(VolunteerConfig)]

    def volunteer_policy() -> Row:
        """The ``[volunteer]`` values as config.toml and the defaults give them (the
        ``ARTDAG_*`` variables the daemon was started with are not applied here)."""
        current = load_config(config.home, environ={}).volunteer
        return {key: getattr(current, key) for key in keys}

    async def set_volunteer_policy(values: Row) -> Row:
        """Write ``[volunteer]`` values to config.toml, checked first the way the daemon reads
        them (ConfigError naming ``[volunteer] key``); the file is replaced atomically."""

        def write() -> Row:
            unknown = [k for k in values if k not in keys]
            if unknown:
                raise ConfigError(f"unknown [volunteer] key {unknown[0]!r}")
            # named "[volunteer] key" in a ConfigError, as the settings form calls it
            tables = {"volunteer": dict(values)}
            checked = load_config(config.home, environ={}, tables=tables).volunteer
            path = config.config_path
            document = tomllib.loads(path.read_text()) if path.exists() else {}
            section = dict(document.get("volunteer", {}))
            for key in values:
                value = getattr(checked, key)
                section[key] = list(value) if isinstance(value, tuple) else value
            document["volunteer"] = section
            tmp = path.with_name(path.name + ".new")
            tmp.write_text(tomli_w.dumps(document))
            tmp.replace(path)
            return volunteer_policy()

        return await trio.to_thread.run_sync(write)

    services.volunteer_policy = volunteer_policy
    services.set_volunteer_policy = set_volunteer_policy
    return services


def _utc(seconds: float | None) -> str | None:
    """Unix seconds as ``2024-05-01 12:00:00Z`` for the pages."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class _CachedUsage:
    """The store's usage (``Blockstore.usage``, a walk over every block), re-measured at most
    once a minute or after :meth:`stale`."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.value = StoreUsage(0, 0)
        self.at = -1e9

    def stale(self) -> None:
        self.at = -1e9

    async def get(self) -> StoreUsage:
        if trio.current_time() - self.at > 60:
            self.value = await self.store.usage()
            self.at = trio.current_time()
        return self.value
