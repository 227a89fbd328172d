"""The web UI's ports (:mod:`webui.services`) over the node API: one small adapter per feature.

The pages are one more thin adapter over the node, like the CLI and the JSON routes: each
adapter here calls the in-process node API (:func:`daemon.nodeapi.local_api`) or, where the
pages show more than the API returns (claims with their anchor times, the store's usage
against the quota), the same services it uses, opened through :class:`daemon.services.Services`.
Replies are the JSON shapes the API returns. Features not running on this node (no market
without P2P, no bridge when it is off) are left ``None`` and their pages say so.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterable
from datetime import UTC, datetime

import trio

from activitypub_bridge import DeliveryError
from daemon.core.render.web import WebRender, web_render
from daemon.http.web_settings import CachedUsage, VolunteerPolicyFile, WebPins, human
from daemon.nodeapi import local_api
from daemon.nodeapi.fediverse import FediverseApi
from daemon.nodeapi.market import MarketApi
from daemon.services import Services
from dag import cid_to_str, parse_cid
from renderer.effects import BUILTIN_EFFECTS
from webui import WebServices
from webui.services import OnRenderEvent, Row, Tags

__all__ = ["web_services"]


async def web_services(services: Services, nursery: trio.Nursery) -> WebServices:
    """The web UI's ports over the node's ``services``; renders started from the recipe page
    run in ``nursery`` (the daemon's: they outlive the request)."""
    config = services.config
    api = local_api(services)
    sizes = CachedUsage(services.node.store)
    return WebServices(
        node=NodeStatus(services, sizes),
        assets=WebAssets(services, sizes),
        pins=WebPins(api.pins, services, sizes),
        volunteer_policy=VolunteerPolicyFile(config.home, config.config_path),
        render=WebRecipes(web_render(await services.renders(), nursery)),
        ownership=WebOwnership(services),
        market=WebMarket(api.market) if services.network is not None else None,
        fediverse=WebFediverse(api.fediverse) if config.activitypub.enabled else None,
    )


def utc(seconds: float | None) -> str | None:
    """Unix seconds as ``2024-05-01 12:00:00Z`` for the pages."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class NodeStatus:
    """The home page's figures and the header's creator."""

    def __init__(self, services: Services, sizes: CachedUsage) -> None:
        self._services, self._sizes = services, sizes

    async def status(self) -> Row:
        services, config = self._services, self._services.config
        data = await services.node.status()
        usage = await trio.to_thread.run_sync(shutil.disk_usage, config.home)
        stored = (await self._sizes.get()).bytes
        data |= {
            "storage": stored,
            "storage_human": human(stored),
            "disk_free_human": human(usage.free),
            "peers": None,
            "peer_id": None,
            "followers": None,
            "deliveries_pending": None,
        }
        if services.network is not None:
            data["peers"] = len(services.network.peers())
            data["peer_id"] = services.network.info().peer_id
        if config.activitypub.enabled:
            activitypub = await services.activitypub()
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

    def identity(self) -> Row:
        config = self._services.config
        site = config.bridge_site()
        return {
            "did": self._services.node.did,
            "user": config.node.user,
            "handle": f"@{config.node.user}@{site.domain}",
            "actor": site.actor_id(config.node.user) if config.activitypub.enabled else None,
        }


class WebAssets:
    """The assets pages: the list, one asset, an upload (the usage figure is re-measured
    after one)."""

    def __init__(self, services: Services, sizes: CachedUsage) -> None:
        self._api = local_api(services).assets
        self._node, self._sizes = services.node, sizes

    async def list(self, tag: str | None, limit: int, offset: int) -> list[Row]:
        return [row.to_json() for row in await self._api.list(tag, limit, offset)]

    async def get(self, cid: str) -> Row | None:
        row = await self._node.asset(parse_cid(cid))
        return None if row is None else row.to_json()

    async def add(
        self, chunks: AsyncIterable[bytes], name: str, tags: Tags, mime: str | None
    ) -> Row:
        added = await self._node.add_stream(chunks, name=name, tags=tags, mime=mime)
        self._sizes.stale()
        return added.asset.to_json() | {"existed": added.existed}


class WebOwnership:
    """A work's claims and anchors, as its public page shows them (with anchor times)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def claims_of(self, cid: str) -> list[Row]:
        claims, anchors = await self._services.claims(), await self._services.anchors()
        out = []
        for claim_cid, record in await claims.claims(parse_cid(cid)):
            anchored = await trio.to_thread.run_sync(anchors.earliest_time, claim_cid)
            out.append(
                {
                    "cid": claim_cid,
                    "claimant": record.get("signer"),
                    "split": {k: v / 100 for k, v in (record.get("split") or {}).items()},
                    "license": record.get("license"),
                    "created": record.get("created"),
                    "anchored": utc(anchored) if anchored is not None else None,
                }
            )
        return sorted(out, key=lambda r: str(r["created"] or ""))

    async def anchors_of(self, cid: str) -> list[Row]:
        """The anchored leaves are records, not the content: anchors of ``cid`` itself, of
        its asset record and of each claim on it count, each anchor once."""
        claims, anchors = await self._services.claims(), await self._services.anchors()
        text = cid_to_str(parse_cid(cid))
        covered: list[tuple[str, str]] = [(text, "content")]
        row = await self._services.node.asset(text)
        if row is not None:
            covered.append((row.record, "asset record"))
        covered += [(c, "claim") for c, _ in await claims.claims(parse_cid(text))]
        out: dict[str, Row] = {}
        for leaf, what in covered:
            found = await trio.to_thread.run_sync(anchors.anchor_of, leaf)
            if found is not None and found.record not in out:
                out[found.record] = found.to_json() | {
                    "covers": what,
                    "leaf": leaf,
                    "time": utc(found.block_time) if found.block_time else None,
                }
        return list(out.values())


class WebRecipes:
    """The recipe page: the built-in effects with their parameters' ranges, and renders run
    by ``render`` (:func:`daemon.core.render.web.web_render`)."""

    def __init__(self, render: WebRender) -> None:
        self._render = render

    def effects(self) -> list[Row]:
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

    async def render(self, doc: Row, inputs: dict[str, str], on_event: OnRenderEvent) -> Row:
        return await self._render(doc, inputs, on_event)


class WebMarket:
    """The jobs page over the node API's market."""

    def __init__(self, market: MarketApi) -> None:
        self._market = market

    async def jobs(self, role: str | None, limit: int) -> list[Row]:
        return [row.to_json() for row in await self._market.jobs(role, limit)]

    async def volunteers(self) -> list[Row]:
        rows: list[Row] = (await self._market.volunteers()).to_json()["volunteers"]
        return rows


class WebFediverse:
    """The fediverse page over the node API's bridge calls."""

    def __init__(self, fediverse: FediverseApi) -> None:
        self._fediverse = fediverse

    async def followers(self) -> Row:
        view = (await self._fediverse.followers()).to_json()
        for row in view["followers"]:
            row["inbox"] = row.pop("shared_inbox") or row["inbox"]
            row["since"] = utc(row["since"])
        return view

    async def deliveries(self, state: str | None, limit: int) -> Row:
        try:
            found = await self._fediverse.deliveries(state or None, max(1, min(limit, 1000)))
        except DeliveryError as exc:
            raise ValueError(str(exc)) from None
        return found.to_json()

    async def publish(self, cid: str, text: str, alt: str | None) -> Row:
        return (await self._fediverse.publish(cid, text, alt)).to_json()

    async def block(self, domain: str) -> str:
        return await self._fediverse.block(domain)

    async def unblock(self, domain: str) -> bool:
        return await self._fediverse.unblock(domain)
