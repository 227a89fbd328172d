"""The fediverse bridge inside the node: :mod:`~daemon.core.fediverse.service` (inbox POSTs,
publishing, delivery, blocks) and :mod:`~daemon.core.fediverse.remote_actors` (other servers'
actors and keys)."""

from daemon.core.fediverse.service import (
    ActivityPubService,
    BridgePaths,
    InboxResult,
    Published,
    PublishError,
    Works,
    open_activitypub,
)

__all__ = [
    "ActivityPubService",
    "BridgePaths",
    "InboxResult",
    "PublishError",
    "Published",
    "Works",
    "open_activitypub",
]
