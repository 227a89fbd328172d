"""The settings page's ports: the pins and the garbage collector (over the node API's pins,
with the store's usage against the quota) and the volunteer policy in config.toml."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w
import trio

from daemon.config import ConfigError, VolunteerConfig, load_config
from daemon.nodeapi.pins import PinsApi
from daemon.services import Services
from dag import StoreUsage
from webui.services import Row

__all__ = ["CachedUsage", "VolunteerPolicyFile", "WebPins", "human"]

VOLUNTEER_KEYS = [f.name for f in fields(VolunteerConfig)]


def human(size: int) -> str:
    """``1536`` -> ``1.5 KiB`` (the settings and home pages' sizes: whole bytes below 1 KiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class CachedUsage:
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


class WebPins:
    """Pins and garbage collection over the node API; the policy figures over the pin
    service itself, with the cached usage (the API's measures the store on every call)."""

    def __init__(self, pins: PinsApi, services: Services, sizes: CachedUsage) -> None:
        self._pins, self._services, self._sizes = pins, services, sizes

    async def list(self) -> list[Row]:
        return [view.to_json() for view in await self._pins.list()]

    async def add(self, cid: str) -> None:
        await self._pins.add(cid)

    async def remove(self, cid: str) -> None:
        await self._pins.remove(cid)

    async def policy(self) -> Row:
        pin_service = await self._services.pins()
        settings = self._services.config.pinning
        usage = await self._sizes.get()
        last = pin_service.last_round
        quota = settings.quota_bytes
        return {
            "follow_creators": list(settings.follow_creators),
            "popular_count": settings.popular_count,
            "quota": human(quota) if quota else None,
            "quota_percent": round(100 * usage.bytes / quota) if quota else None,
            "usage": human(usage.bytes),
            "blocks": usage.blocks,
            "last_round": last.to_json() if last else None,
            "last_gc": pin_service.last_gc,
            "gc_freed": human(int(pin_service.last_gc["freed_bytes"]))
            if pin_service.last_gc
            else None,
        }

    async def collect(self) -> Row:
        report = (await self._pins.collect()).to_json()
        self._sizes.stale()
        return report | {"freed": human(int(report["freed_bytes"]))}


class VolunteerPolicyFile:
    """The ``[volunteer]`` table of config.toml, as config.toml and the defaults give it (the
    ``ARTDAG_*`` variables the daemon was started with are not applied here)."""

    def __init__(self, home: Path, config_path: Path) -> None:
        self._home, self._path = home, config_path

    def current(self) -> Row:
        current = load_config(self._home, environ={}).volunteer
        return {key: getattr(current, key) for key in VOLUNTEER_KEYS}

    async def save(self, values: Row) -> Row:
        """Checked first the way the daemon reads them (ConfigError naming ``[volunteer]
        key``, as the settings form calls it); the file is replaced atomically."""
        return await trio.to_thread.run_sync(self._write, values)

    def _write(self, values: Row) -> Row:
        unknown = [k for k in values if k not in VOLUNTEER_KEYS]
        if unknown:
            raise ConfigError(f"unknown [volunteer] key {unknown[0]!r}")
        tables = {"volunteer": dict(values)}
        checked = load_config(self._home, environ={}, tables=tables).volunteer
        document = tomllib.loads(self._path.read_text()) if self._path.exists() else {}
        section = dict(document.get("volunteer", {}))
        for key in values:
            value = getattr(checked, key)
            section[key] = list(value) if isinstance(value, tuple) else value
        document["volunteer"] = section
        tmp = self._path.with_name(self._path.name + ".new")
        tmp.write_text(tomli_w.dumps(document))
        tmp.replace(self._path)
        return self.current()
