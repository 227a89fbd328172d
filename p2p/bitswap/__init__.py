"""artdag's bitswap: serve our blocks to any peer, fetch what we lack, verify every byte.

Bitswap 1.2.0 (1.1.0 and 1.0.0 peers are answered too), interoperable with Kubo. Sans-I/O
cores: :mod:`.messages` (wire codec), :mod:`.ledger` (what peers want from us, served round
robin), :mod:`.wantlist` (what we want and whom to ask); thin trio adapters around them:
:mod:`.links`, :mod:`.server`, :mod:`.client`, :mod:`.fetch`, :mod:`.service`.
"""

from .errors import BitswapError, BlockUnavailable, MessageError
from .fetch import FetchResult, Progress
from .ledger import ServerLedger, ServeTask
from .messages import (
    PROTOCOL_V100,
    PROTOCOL_V110,
    PROTOCOL_V120,
    PROTOCOLS,
    BlockPrefix,
    Message,
    PayloadBlock,
    Presence,
    PresenceType,
    WantEntry,
    WantType,
    decode_message,
    encode_message,
)
from .service import Bitswap
from .stats import BitswapStats, PeerStats
from .wantlist import Send, Unwanted, WantTracker

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_V100",
    "PROTOCOL_V110",
    "PROTOCOL_V120",
    "Bitswap",
    "BitswapError",
    "BitswapStats",
    "BlockPrefix",
    "BlockUnavailable",
    "FetchResult",
    "Message",
    "MessageError",
    "PayloadBlock",
    "PeerStats",
    "Presence",
    "PresenceType",
    "Progress",
    "Send",
    "ServeTask",
    "ServerLedger",
    "Unwanted",
    "WantEntry",
    "WantTracker",
    "WantType",
    "decode_message",
    "encode_message",
]
