"""``PinStatus.delegates``: this node's libp2p multiaddrs, each ending in ``/p2p/<peer id>``.

The spec asks for at least one. With the network running they are its live addresses; without
it (the in-process node API, or a node with p2p off) the configured listen addresses with the
peer id of the node's key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2p.network import Network

__all__ = ["Delegates"]

log = logging.getLogger("artdag.pinning")

MAX_DELEGATES = 20
DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/4001"


class Delegates:
    def __init__(self, network: Network | None, node_key_path: Path, listen: Sequence[str]) -> None:
        self._network = network
        self._node_key_path = node_key_path
        self._listen = tuple(listen)
        self._fallback: list[str] | None = None

    def addrs(self) -> list[str]:
        """At most :data:`MAX_DELEGATES` addresses, at least one."""
        if self._network is not None:
            try:
                addrs = self._network.info().addrs
                if addrs:
                    return addrs[:MAX_DELEGATES]
            except Exception as exc:  # the network is stopping
                log.debug("no live addresses: %s", exc)
        if self._fallback is None:
            from p2p import load_or_create_key, peer_id_from_key

            pid = peer_id_from_key(load_or_create_key(self._node_key_path))
            listen = [a for a in self._listen if "/p2p/" not in a] or [DEFAULT_LISTEN]
            self._fallback = [f"{a}/p2p/{pid}" for a in listen][:MAX_DELEGATES]
        return self._fallback
