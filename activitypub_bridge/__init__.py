"""ActivityPub bridge: Mastodon and other fediverse servers follow artdag creators.

Mounted by the daemon (``daemon/activitypub_service.py``, ``daemon/api_activitypub.py``).
Here: the outbound HTTP client with SSRF guard and double-knock signing
(:mod:`activitypub_bridge.http_client`); what was emitted and received
(:mod:`activitypub_bridge.activity_store`); the HTTP
Signatures layer (sans-I/O): actor RSA keys (:mod:`activitypub_bridge.keys`) and signing and
verification of requests in both draft-cavage and RFC 9421 form, with a key cache and re-fetch
on rotation (:mod:`activitypub_bridge.http_signatures`); and the persistent delivery queue:
the retry schedule as a transition table (:mod:`activitypub_bridge.delivery_schedule`), the
SQLite queue (:mod:`activitypub_bridge.delivery_queue`) and its trio worker
(:mod:`activitypub_bridge.delivery_worker`); the JSON documents it serves and sends (WebFinger,
NodeInfo, actors, collections, Notes for works, Accepts: :mod:`activitypub_bridge.documents`);
the guard on remote fetches and domain blocks (:mod:`activitypub_bridge.ssrf`); what an inbox
POST does, as decisions (:mod:`activitypub_bridge.inbox`); and who follows whom, with stored
domain blocks (:mod:`activitypub_bridge.followers`); JSON from strangers parsed within size,
depth and integer limits (:mod:`activitypub_bridge.json_limits`, also for the daemon's other
routes).
"""

from .activity_store import ActivityStore, ActivityStoreError
from .delivery_queue import Delivery, DeliveryQueue, QueueStats
from .delivery_schedule import DeliveryError, DeliveryState, Outcome, RetryPolicy
from .delivery_worker import DeliveryWorker
from .documents import (
    ACTIVITY_JSON,
    AS_CONTEXT,
    NODEINFO_21_REL,
    NODEINFO_CONTENT_TYPE,
    PUBLIC,
    WEBFINGER_CONTENT_TYPE,
    BridgeSite,
    Creator,
    DocumentError,
    WorkInfo,
    accept_follow,
    actor,
    attachment_type,
    ed25519_multibase,
    nodeinfo,
    nodeinfo_links,
    note_for_work,
    ordered_collection,
    ordered_collection_page,
    parse_acct,
    webfinger,
)
from .followers import Follower, FollowerStore, FollowerStoreError
from .http_client import STYLES, BridgeClient, FetchError, SignatureStyle, Signer
from .http_signatures import (
    CAVAGE_GET_HEADERS,
    CAVAGE_POST_HEADERS,
    DEFAULT_WINDOW_S,
    RFC9421_COMPONENTS,
    KeyLookup,
    RejectReason,
    SignatureRejected,
    SignedRequest,
    VerifiedSignature,
    sign_cavage,
    sign_rfc9421,
    signature_key_id,
    verify_cavage,
    verify_request,
    verify_rfc9421,
)
from .inbox import (
    AddFollower,
    Decision,
    Ignore,
    RecordUsage,
    Reject,
    RejectKind,
    RemoveActor,
    RemoveFollower,
    SendAccept,
    handle_inbox,
)
from .json_limits import JsonRefused, parse_json
from .key_cache import CachedKey, KeyCache, verify_with_refetch
from .keys import (
    RSA_KEY_BITS,
    ActorKeyError,
    generate_actor_key,
    load_actor_key,
    load_or_create_actor_key,
    load_public_key_pem,
    private_key_pem,
    public_key_pem,
    save_actor_key,
)
from .ssrf import (
    DomainError,
    FetchRefused,
    RefuseReason,
    address_refusal,
    check_fetch_url,
    domain_blocked,
    normalise_domain,
    parse_domain_block,
)

__all__ = [
    "ActivityStore",
    "ActivityStoreError",
    "STYLES",
    "BridgeClient",
    "FetchError",
    "SignatureStyle",
    "Signer",
    "Follower",
    "FollowerStore",
    "FollowerStoreError",
    "AddFollower",
    "Decision",
    "Ignore",
    "RecordUsage",
    "Reject",
    "RejectKind",
    "RemoveActor",
    "RemoveFollower",
    "SendAccept",
    "handle_inbox",
    "JsonRefused",
    "parse_json",
    "ACTIVITY_JSON",
    "AS_CONTEXT",
    "NODEINFO_21_REL",
    "NODEINFO_CONTENT_TYPE",
    "PUBLIC",
    "WEBFINGER_CONTENT_TYPE",
    "BridgeSite",
    "Creator",
    "DocumentError",
    "WorkInfo",
    "accept_follow",
    "actor",
    "attachment_type",
    "ed25519_multibase",
    "nodeinfo",
    "nodeinfo_links",
    "note_for_work",
    "ordered_collection",
    "ordered_collection_page",
    "parse_acct",
    "webfinger",
    "DomainError",
    "FetchRefused",
    "RefuseReason",
    "address_refusal",
    "check_fetch_url",
    "domain_blocked",
    "normalise_domain",
    "parse_domain_block",
    "Delivery",
    "DeliveryError",
    "DeliveryQueue",
    "DeliveryState",
    "DeliveryWorker",
    "Outcome",
    "QueueStats",
    "RetryPolicy",
    "CAVAGE_GET_HEADERS",
    "CAVAGE_POST_HEADERS",
    "DEFAULT_WINDOW_S",
    "RFC9421_COMPONENTS",
    "RSA_KEY_BITS",
    "ActorKeyError",
    "CachedKey",
    "KeyCache",
    "KeyLookup",
    "RejectReason",
    "SignatureRejected",
    "SignedRequest",
    "VerifiedSignature",
    "generate_actor_key",
    "load_actor_key",
    "load_or_create_actor_key",
    "load_public_key_pem",
    "private_key_pem",
    "public_key_pem",
    "save_actor_key",
    "sign_cavage",
    "sign_rfc9421",
    "signature_key_id",
    "verify_cavage",
    "verify_request",
    "verify_rfc9421",
    "verify_with_refetch",
]
