"""The daemon's services as the web UI's port (:class:`webui.WebServices`).

Thin adapters: each field calls the same service the CLI and the JSON API call, and returns the
JSON shapes the API returns. Features not running on this node (no market without P2P, no
bridge when disabled) are left ``None`` and their pages say so.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import tomli_w
import trio

import dag
from dag import cid_to_str, parse_cid
from webui import WebServices

from .config import _SECTIONS, ConfigError, load_config

if TYPE_CHECKING:
    from .activitypub_service import ActivityPubService
    from .anchor_service import AnchorService
    from .claims_service import ClaimsService
    from .node import Node

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
) -> WebServices:
    """``render`` is the recipe page's render function (``daemon.web_render``), if any."""
    config = node.config
    sizes = _CachedSize(config.store_path)

    async def status() -> Row:
        data = await node.status()
        usage = await trio.to_thread.run_sync(shutil.disk_usage, config.home)
        stored = await sizes.get()
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
        return added.asset.to_json() | {"existed": added.existed}

    def identity() -> Row:
        site = config.bridge_site()
        return {
            "did": node.did,
            "user": config.user,
            "handle": f"@{config.user}@{site.domain}",
            "actor": site.actor_id(config.user) if activitypub is not None else None,
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

        async def claims_of(cid: str) -> list[Row]:
            found = await claims.claims(parse_cid(cid))
            out = []
            for claim_cid, record in found:
                out.append(
                    {
                        "cid": claim_cid,
                        "claimant": record.get("signer"),
                        "split": {k: v / 100 for k, v in (record.get("split") or {}).items()},
                        "license": record.get("license"),
                        "created": record.get("created"),
                    }
                )
            return out

        services.claims_of = claims_of

    if anchors is not None:

        async def anchors_of(cid: str) -> list[Row]:
            row = await trio.to_thread.run_sync(anchors.anchor_of, cid)
            return [] if row is None else [row.to_json()]

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
            return [r.to_json(config.trust_after) for r in rows]

        services.jobs, services.volunteers = jobs, volunteers

    if activitypub is not None:
        ap = activitypub

        async def followers() -> Row:
            rows = await trio.to_thread.run_sync(ap.followers.followers, ap.creator.username, 1000)
            blocked = await trio.to_thread.run_sync(ap.followers.blocked_domains)
            return {
                "handle": f"@{ap.creator.username}@{ap.site.domain}",
                "actor": ap.site.actor_id(ap.creator.username),
                "followers": [
                    {
                        "actor": r.actor,
                        "inbox": r.shared_inbox or r.inbox,
                        "since": r.followed_at,
                    }
                    for r in rows
                ],
                "blocked_domains": blocked,
                "config_blocked_domains": list(ap.config_blocks),
            }

        async def deliveries(state: str | None, limit: int) -> Row:
            return await ap.deliveries(state, limit)

        async def publish(cid: str, text: str, alt: str | None) -> Row:
            return (await ap.publish(cid, text, alt)).to_json()

        services.followers, services.deliveries, services.publish = followers, deliveries, publish
        services.block_domain, services.unblock_domain = ap.block, ap.unblock

    async def pins() -> list[Row]:
        rows = await node.store.pins()
        return [{"cid": cid_to_str(p.cid), "recursive": p.recursive} for p in rows]

    async def pin(cid: str) -> None:
        parsed = parse_cid(cid)
        if not await node.store.has(parsed):
            raise dag.BlockNotFound(f"{cid} is not in the store")
        await node.store.pin(parsed)

    async def unpin(cid: str) -> None:
        await node.store.unpin(parse_cid(cid))

    services.pins, services.pin, services.unpin = pins, pin, unpin

    def volunteer_policy() -> Row:
        current = load_config(config.home)
        return {key: getattr(current, attr) for key, attr in _SECTIONS["volunteer"].items()}

    async def set_volunteer_policy(values: Row) -> Row:
        """Write ``[volunteer]`` values to config.toml (checked by loading it back first)."""

        def write() -> Row:
            keys = _SECTIONS["volunteer"]
            unknown = [k for k in values if k not in keys]
            if unknown:
                raise ConfigError(f"unknown [volunteer] key {unknown[0]!r}")
            # Checked the way the daemon will read it (raises ConfigError naming the key).
            load_config(config.home, environ={}, **{keys[k]: v for k, v in values.items()})
            path = config.config_path
            document = tomllib.loads(path.read_text()) if path.exists() else {}
            document["volunteer"] = dict(document.get("volunteer", {})) | dict(values)
            tmp = path.with_name(path.name + ".new")
            tmp.write_text(tomli_w.dumps(document))
            tmp.replace(path)
            return volunteer_policy()

        return await trio.to_thread.run_sync(write)

    services.volunteer_policy = volunteer_policy
    services.set_volunteer_policy = set_volunteer_policy
    return services


class _CachedSize:
    """The store's size on disk, re-measured at most once a minute (a walk of every file)."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.value = 0
        self.at = -1e9

    async def get(self) -> int:
        if trio.current_time() - self.at > 60:
            self.value = await trio.to_thread.run_sync(_dir_size, self.path)
            self.at = trio.current_time()
        return self.value


def _dir_size(path: Any) -> int:
    total = 0
    for entry in path.rglob("*"):
        try:
            if entry.is_file():
                total += entry.stat().st_size
        except OSError:
            continue
    return total
