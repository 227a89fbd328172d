"""What the pin services fetch with: the store and the running network, nothing more.

Both :class:`~daemon.core.pins.service.PinService` (policy and operator pins) and the Pinning
Service worker (:mod:`daemon.core.pinning_api.worker`) bring missing DAGs in with
:func:`p2p.fetch_dag`; they are given this pair instead of the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dag import Blockstore

if TYPE_CHECKING:
    from p2p.network import Network

__all__ = ["FetchSource"]


@dataclass(frozen=True, slots=True)
class FetchSource:
    """A :class:`p2p.DagSource`: ``network`` is None without the daemon."""

    store: Blockstore
    network: Network | None = None

    @property
    def online(self) -> bool:
        return self.network is not None
