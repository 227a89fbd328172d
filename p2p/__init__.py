"""Peer-to-peer networking: libp2p host, discovery, signed gossip, bitswap, creator repo sync.

Hosts speak Noise and Yamux only (:mod:`p2p.host`). The daemon starts a :class:`Network`
(``p2p.network``) in its nursery; the pieces it composes live in ``p2p.discovery``,
``p2p.bitswap``, ``p2p.gossip`` and ``p2p.repo``.
"""

from .dag_fetch import (
    BlockNetwork,
    DagFetchError,
    DagSource,
    Dialer,
    DialRefused,
    FetchReport,
    OriginCheck,
    dial_origins,
    fetch_dag,
)
from .errors import P2PError
from .host import (
    connect,
    host_addrs,
    load_or_create_key,
    new_secure_host,
    peer_id_from_key,
    peer_id_of,
    running_host,
)

__all__ = [
    "BlockNetwork",
    "DagFetchError",
    "DagSource",
    "DialRefused",
    "Dialer",
    "FetchReport",
    "OriginCheck",
    "P2PError",
    "connect",
    "dial_origins",
    "fetch_dag",
    "host_addrs",
    "load_or_create_key",
    "new_secure_host",
    "peer_id_from_key",
    "peer_id_of",
    "running_host",
]
