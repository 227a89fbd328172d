"""The JSON documents the bridge serves and sends: WebFinger, NodeInfo, actors, collections,
``Create(Note)`` for a work and ``Accept(Follow)``.

Pure builders (sans-I/O): each takes plain values and returns a JSON-serialisable dict, so the
HTTP routes, the publisher and the tests share one definition. What Mastodon and Fedify need is
in ``docs/decisions.md`` ("ActivityPub peers"): a WebFinger ``self`` link of type
``application/activity+json``; an actor with ``inbox``, ``outbox``, ``followers``,
``endpoints.sharedInbox`` and ``publicKey{id, owner, publicKeyPem}``; Accept referencing the
Follow; Notes (the only type Mastodon shows inline) with typed attachments.

The ids they carry come from :class:`~activitypub_bridge.site.BridgeSite` (its module lists
them); that module's names are re-exported here.

JSON-LD contexts are only ones Fedify ships preloaded (activitystreams, security/v1,
multikey/v1) plus inline terms, since a closed network cannot fetch any other.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .site import BridgeSite, Creator, DocumentError, WorkInfo, ed25519_multibase, parse_acct

__all__ = [
    "ACTIVITY_JSON",
    "AS_CONTEXT",
    "NODEINFO_21_REL",
    "NODEINFO_21_SCHEMA",
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
]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
WEBFINGER_CONTENT_TYPE = "application/jrd+json"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
NODEINFO_21_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_21_SCHEMA = NODEINFO_21_REL + "#"
NODEINFO_CONTENT_TYPE = f'application/json; profile="{NODEINFO_21_SCHEMA}"'
SOFTWARE_NAME = "artdag"

_ATTACHMENT_TYPES = {"image": "Image", "video": "Video", "audio": "Audio"}


def webfinger(
    site: BridgeSite, creators: Iterable[Creator], resource: str
) -> dict[str, Any] | None:
    """The JRD for ``resource`` (``acct:user@domain`` or an actor/profile URL), None if not ours.

    Raises :class:`DocumentError` for a malformed resource (HTTP 400); None means 404.
    """
    by_name = {c.username.lower(): c for c in creators}
    text = resource.strip() if isinstance(resource, str) else ""
    if text.startswith(("https://", "http://")):
        username = site.username_for_actor(text)
        if username is None and text.startswith(site.url("/@")):
            username = text[len(site.url("/@")) :]
        creator = by_name.get((username or "").lower())
        if creator is None or text not in (
            site.actor_id(creator.username),
            site.profile_url(creator.username),
        ):
            return None
    else:
        user, domain = parse_acct(resource)
        if domain != site.domain:
            return None
        creator = by_name.get(user.lower())
        if creator is None:
            return None
    actor_url = site.actor_id(creator.username)
    profile = site.profile_url(creator.username)
    return {
        "subject": f"acct:{creator.username}@{site.domain}",
        "aliases": [actor_url, profile],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor_url},
            {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile},
        ],
    }


def nodeinfo_links(site: BridgeSite) -> dict[str, Any]:
    """The ``/.well-known/nodeinfo`` document: one link to ``/nodeinfo/2.1``."""
    return {"links": [{"rel": NODEINFO_21_REL, "href": site.url("/nodeinfo/2.1")}]}


def nodeinfo(site: BridgeSite, users_total: int, local_posts: int, version: str) -> dict[str, Any]:
    """The NodeInfo 2.1 document (served with :data:`NODEINFO_CONTENT_TYPE`)."""
    for label, n in (("users_total", users_total), ("local_posts", local_posts)):
        if type(n) is not int or n < 0:
            raise DocumentError(f"{label} must be a non-negative int: {n!r}")
    if not isinstance(version, str) or not version:
        raise DocumentError(f"software version must be a non-empty string: {version!r}")
    return {
        "version": "2.1",
        "software": {"name": SOFTWARE_NAME, "version": version},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": users_total}, "localPosts": local_posts},
        "metadata": {"nodeName": site.domain},
    }


def _text_html(text: str) -> str:
    """Plain text as HTML paragraphs: escaped, blank lines split paragraphs, newlines -> <br>."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line, quote=True) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def actor(site: BridgeSite, creator: Creator) -> dict[str, Any]:
    """The ``Person`` document for ``creator`` (RSA ``publicKey`` + FEP-521a Ed25519 key)."""
    actor_url = site.actor_id(creator.username)
    return {
        "@context": [
            AS_CONTEXT,
            SECURITY_CONTEXT,
            MULTIKEY_CONTEXT,
            {
                "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
                "toot": "http://joinmastodon.org/ns#",
                "discoverable": "toot:discoverable",
            },
        ],
        "type": "Person",
        "id": actor_url,
        "preferredUsername": creator.username,
        "name": creator.name or creator.username,
        "summary": _text_html(creator.summary),
        "url": site.profile_url(creator.username),
        "inbox": site.inbox(creator.username),
        "outbox": site.outbox(creator.username),
        "followers": site.followers(creator.username),
        "following": site.following(creator.username),
        "endpoints": {"sharedInbox": site.shared_inbox},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "publicKey": {
            "id": site.key_id(creator.username),
            "owner": actor_url,
            "publicKeyPem": creator.public_key_pem,
        },
        "assertionMethod": [
            {
                "id": site.ed25519_key_id(creator.username),
                "type": "Multikey",
                "controller": actor_url,
                "publicKeyMultibase": ed25519_multibase(creator.did),
            }
        ],
    }


def ordered_collection(id: str, total: int, first: str | None) -> dict[str, Any]:
    """An ``OrderedCollection`` head (outbox, followers) pointing at its first page."""
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first is not None:
        doc["first"] = first
    return doc


def ordered_collection_page(
    id: str,
    part_of: str,
    items: Sequence[Any],
    next: str | None = None,
    prev: str | None = None,
) -> dict[str, Any]:
    """One ``OrderedCollectionPage``; ``next``/``prev`` are left out at the ends."""
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": list(items),
    }
    if next is not None:
        doc["next"] = next
    if prev is not None:
        doc["prev"] = prev
    return doc


def attachment_type(mime: str) -> str:
    """The ActivityStreams type Mastodon expects for an attachment of MIME type ``mime``."""
    return _ATTACHMENT_TYPES.get(mime.split("/", 1)[0].lower(), "Document")


def _timestamp(published: datetime | str) -> str:
    if isinstance(published, datetime):
        if published.tzinfo is None:
            raise DocumentError("published is a naive datetime; pass an aware one")
        return published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = datetime.fromisoformat(published)
    except (TypeError, ValueError):
        raise DocumentError(f"published must be an RFC 3339 timestamp: {published!r}") from None
    if parsed.tzinfo is None:
        raise DocumentError(f"published has no time zone: {published!r}")
    return _timestamp(parsed)


def note_for_work(
    site: BridgeSite,
    creator: Creator,
    work: WorkInfo,
    text: str,
    published: datetime | str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(create_activity, note)``: a public Note showing ``work``, wrapped in a Create.

    ``content`` is ``text`` HTML-escaped, then links to the provenance page and ``ipfs://CID``.
    The Note and Create ids come from the CID, so a re-publish yields the same ids.
    """
    actor_url = site.actor_id(creator.username)
    when = _timestamp(published)
    to, cc = [PUBLIC], [site.followers(creator.username)]
    ipfs_url = f"ipfs://{work.cid}"
    links = (
        f'<p><a href="{html.escape(work.provenance_url, quote=True)}">'
        f"provenance of {html.escape(work.name or work.cid)}</a> · "
        f'<a href="{html.escape(ipfs_url, quote=True)}">{html.escape(ipfs_url)}</a></p>'
    )
    attachment: dict[str, Any] = {
        "type": attachment_type(work.mime),
        "mediaType": work.mime,
        "url": work.gateway_url,
        "name": work.alt,
    }
    if work.width is not None:
        attachment["width"] = work.width
    if work.height is not None:
        attachment["height"] = work.height
    note_id = site.note_id(creator.username, work.cid)
    note: dict[str, Any] = {
        "id": note_id,
        "type": "Note",
        "attributedTo": actor_url,
        "content": _text_html(text) + links,
        "mediaType": "text/html",
        "url": work.provenance_url,
        "published": when,
        "to": to,
        "cc": cc,
        "sensitive": False,
        "attachment": [attachment],
        "tag": [],
    }
    create = {
        "@context": AS_CONTEXT,
        "id": site.create_id(creator.username, work.cid),
        "type": "Create",
        "actor": actor_url,
        "published": when,
        "to": to,
        "cc": cc,
        "object": note,
    }
    return create, {"@context": AS_CONTEXT, **note}


def accept_follow(
    site: BridgeSite, creator: Creator, follow_activity: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``Accept`` of a ``Follow`` of ``creator``, with the Follow embedded.

    Raises :class:`DocumentError` if it is not a Follow of this creator with an id and actor.
    """
    actor_url = site.actor_id(creator.username)
    if not isinstance(follow_activity, Mapping) or follow_activity.get("type") != "Follow":
        raise DocumentError("can only accept an activity of type Follow")
    follow_id = follow_activity.get("id")
    follower = follow_activity.get("actor")
    if isinstance(follower, Mapping):
        follower = follower.get("id")
    target = follow_activity.get("object")
    if isinstance(target, Mapping):
        target = target.get("id")
    if not isinstance(follow_id, str) or not follow_id:
        raise DocumentError("Follow has no id")
    if not isinstance(follower, str) or not follower.startswith(("https://", "http://")):
        raise DocumentError(f"Follow {follow_id} has no actor URL")
    if target != actor_url:
        raise DocumentError(f"Follow {follow_id} is for {target!r}, not {actor_url}")
    embedded = {k: v for k, v in follow_activity.items() if k != "@context"}
    return {
        "@context": AS_CONTEXT,
        "id": site.accept_id(creator.username, follow_id),
        "type": "Accept",
        "actor": actor_url,
        "to": [follower],
        "object": embedded,
    }
