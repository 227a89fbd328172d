"""Assets: files added to the node with a signed asset record.

The pattern every feature of the node API follows: a Protocol saying what the feature can do,
a local implementation over the services (:mod:`daemon.services`) and a remote one over the
daemon's JSON API; both return the same dataclasses, which the HTTP routes serialise with
``to_json`` and the remote side reads back with ``from_json``.
"""

from __future__ import annotations

from typing import Protocol

from daemon.core.index import AssetRow
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services

__all__ = ["AssetsApi", "LocalAssets", "RemoteAssets"]


class AssetsApi(Protocol):
    async def list(
        self, tag: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AssetRow]:
        """The assets this node holds, newest first."""
        ...


class LocalAssets:
    def __init__(self, services: Services) -> None:
        self._node = services.node

    async def list(
        self, tag: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AssetRow]:
        return await self._node.assets(tag, limit, offset)


class RemoteAssets:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def list(
        self, tag: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AssetRow]:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if tag is not None:
            params["tag"] = tag
        body = await self._caller.call("GET", "/api/v1/assets", params=params)
        return [AssetRow.from_json(item) for item in body["assets"]]
