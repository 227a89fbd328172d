"""The network: this node's peer id and addresses, its peers, dialling one, fetching a DAG
(``artdag id``, ``peers``, ``connect``, ``get``).

The libp2p host lives in the daemon, so in-process only :meth:`NetworkApi.id` answers (from
the node key on disk, with no addresses); the others raise
:class:`~daemon.services.NeedsDaemon`. The daemon's routes (:mod:`daemon.http.p2p`) call the
local implementation over its running network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from daemon.nodeapi.client import DaemonError
from daemon.nodeapi.remote import RemoteCaller
from daemon.services import Services
from dag import cid_to_str, parse_cid

__all__ = ["Fetched", "LocalNetwork", "NetworkApi", "NodeId", "RemoteNetwork"]

FetchProgress = Callable[[int, int], None]  # blocks fetched so far, blocks known so far


@dataclass(frozen=True)
class NodeId:
    peer_id: str
    addrs: list[str]
    did: str

    def to_json(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "addrs": self.addrs, "did": self.did}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeId:
        return cls(data["peer_id"], list(data["addrs"]), data["did"])


@dataclass(frozen=True)
class Fetched:
    """A DAG fetched into the store and pinned."""

    cid: str
    blocks: int
    bytes: int
    fetched: int
    already_had: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fetched:
        return cls(
            data["cid"],
            data.get("blocks", 0),
            data.get("bytes", 0),
            data.get("fetched", 0),
            data.get("already_had", 0),
        )


class NetworkApi(Protocol):
    async def id(self) -> NodeId:
        """This node's peer id, its listening addresses (none without the daemon), its did."""
        ...

    async def peers(self) -> list[dict[str, Any]]:
        """Connected peers with their gossip score and counted bad messages."""
        ...

    async def connect(self, multiaddr: str) -> str:
        """Dial a peer; its peer id."""
        ...

    async def get(
        self, cid: str, block_timeout: float, progress: FetchProgress | None = None
    ) -> Fetched:
        """Fetch the DAG below ``cid`` from the network into the store and pin it."""
        ...


class LocalNetwork:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def id(self) -> NodeId:
        node, network = self._services.node, self._services.network
        if network is not None:
            info = network.info()
            return NodeId(info.peer_id, list(info.addrs), node.did)
        from p2p import load_or_create_key, peer_id_from_key

        path = self._services.config.node_key_path
        key = await trio.to_thread.run_sync(load_or_create_key, path)
        return NodeId(peer_id_from_key(key), [], node.did)

    async def peers(self) -> list[dict[str, Any]]:
        network = self._services.require_network("listing peers")
        return [row.to_json() for row in network.peers()]

    async def connect(self, multiaddr: str) -> str:
        network = self._services.require_network("dialling a peer")
        peer: str = await network.connect(multiaddr)
        return peer

    async def get(
        self, cid: str, block_timeout: float, progress: FetchProgress | None = None
    ) -> Fetched:
        network = self._services.require_network("fetching from the network")
        store = self._services.node.store
        parsed = parse_cid(cid)
        result = await network.get(parsed, progress=progress, block_timeout=block_timeout)
        await store.pin(parsed)
        await store.flush()
        return Fetched(
            cid_to_str(parsed), result.blocks, result.bytes, result.fetched, result.already_had
        )


class RemoteNetwork:
    def __init__(self, caller: RemoteCaller) -> None:
        self._caller = caller

    async def id(self) -> NodeId:
        return NodeId.from_json(await self._caller.call("GET", "/api/v1/p2p/id"))

    async def peers(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self._caller.call("GET", "/api/v1/p2p/peers"))["peers"]
        return rows

    async def connect(self, multiaddr: str) -> str:
        reply = await self._caller.call("POST", "/api/v1/p2p/connect", json={"addr": multiaddr})
        peer: str = reply["peer_id"]
        return peer

    async def get(
        self, cid: str, block_timeout: float, progress: FetchProgress | None = None
    ) -> Fetched:
        params = {"cid": cid, "timeout": block_timeout}
        async for event in self._caller.lines("POST", "/api/v1/p2p/get", params=params):
            if "error" in event:
                raise DaemonError(event["error"])
            if "done" in event:
                return Fetched.from_json(event["done"])
            if progress is not None:
                progress(event["blocks"], event["known"])
        raise DaemonError("the daemon ended the fetch without a result")
