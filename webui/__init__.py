"""The web-facing side of a node: so far the public ``/ipfs/<cid>`` path gateway and the public
provenance page of a work (``/provenance/<cid>``, linked from fediverse posts).

The daemon mounts it with :func:`add_gateway_routes` on its Quart-trio app; the gateway gets
the :class:`daemon.core.node.Node` it serves from as an argument and imports nothing from
``daemon``.
"""

from .auth import (
    MIN_PASSWORD_LENGTH,
    LiveSessions,
    LoginThrottle,
    PasswordError,
    PasswordFile,
    hash_password,
    load_or_create_secret,
    verify_password,
)
from .client_limits import ClientLimits, TokenBucket, client_address
from .gateway import (
    IMMUTABLE_CACHE,
    USER_CONTENT_HEADERS,
    FetchMissing,
    GatewayError,
    GatewayEvent,
    GatewayObserver,
    add_gateway_routes,
    content_disposition,
    requested_format,
    sniff_content_type,
)
from .gateway_ranges import (
    ByteRange,
    RangeKind,
    RangeRequest,
    if_none_match_hits,
    if_range_allows,
    parse_range,
)
from .pages import add_pages
from .provenance_page import AssetSummary, add_provenance_routes
from .services import WebServices

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "LiveSessions",
    "LoginThrottle",
    "PasswordError",
    "PasswordFile",
    "WebServices",
    "add_pages",
    "hash_password",
    "load_or_create_secret",
    "verify_password",
    "AssetSummary",
    "add_provenance_routes",
    "IMMUTABLE_CACHE",
    "USER_CONTENT_HEADERS",
    "ByteRange",
    "ClientLimits",
    "FetchMissing",
    "GatewayError",
    "GatewayEvent",
    "GatewayObserver",
    "TokenBucket",
    "client_address",
    "RangeKind",
    "RangeRequest",
    "add_gateway_routes",
    "content_disposition",
    "if_none_match_hits",
    "if_range_allows",
    "parse_range",
    "requested_format",
    "sniff_content_type",
]
