"""ActivityPub bridge: Mastodon and other fediverse servers follow artdag creators.

So far this package holds two foundations, not yet mounted by the daemon: the HTTP
Signatures layer (sans-I/O): actor RSA keys (:mod:`activitypub_bridge.keys`) and signing and
verification of requests in both draft-cavage and RFC 9421 form, with a key cache and re-fetch
on rotation (:mod:`activitypub_bridge.http_signatures`); and the persistent delivery queue:
the retry schedule as a transition table (:mod:`activitypub_bridge.delivery_schedule`), the
SQLite queue (:mod:`activitypub_bridge.delivery_queue`) and its trio worker
(:mod:`activitypub_bridge.delivery_worker`).
"""

from .delivery_queue import Delivery, DeliveryQueue, QueueStats
from .delivery_schedule import DeliveryError, DeliveryState, Outcome, RetryPolicy
from .delivery_worker import DeliveryWorker
from .http_signatures import (
    CAVAGE_GET_HEADERS,
    CAVAGE_POST_HEADERS,
    DEFAULT_WINDOW_S,
    RFC9421_COMPONENTS,
    CachedKey,
    KeyCache,
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
    verify_with_refetch,
)
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

__all__ = [
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
