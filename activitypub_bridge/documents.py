"""The JSON documents the bridge serves and sends: WebFinger, NodeInfo, actors, collections,
``Create(Note)`` for a work and ``Accept(Follow)``.

Pure builders (sans-I/O): each takes plain values and returns a JSON-serialisable dict, so the
HTTP routes, the publisher and the tests share one definition. What Mastodon and Fedify need is
in ``docs/decisions.md`` ("ActivityPub peers"): a WebFinger ``self`` link of type
``application/activity+json``; an actor with ``inbox``, ``outbox``, ``followers``,
``endpoints.sharedInbox`` and ``publicKey{id, owner, publicKeyPem}``; Accept referencing the
Follow; Notes (the only type Mastodon shows inline) with typed attachments.

Every id is built by a :class:`BridgeSite` method, so routes can serve exactly these paths:

- ``/users/<username>`` actor; ``#main-key`` (RSA, HTTP Signatures), ``#ed25519-key``
  (FEP-521a ``assertionMethod``, the creator's did:key); ``/inbox``, ``/outbox``,
  ``/followers``, ``/following`` under it; ``/inbox`` shared inbox; ``/@<username>`` profile
- ``/objects/<username>/<cid>`` Note and ``/activities/<username>/<cid>/create`` its Create —
  derived from the CID, so re-publishing a work gives the same ids (receivers deduplicate)
- ``/activities/<username>/accept/<hash of the Follow id>`` Accept — one id per Follow, so a
  retried Accept is the same activity
- collection pages: ``<collection>?page=<n>``

JSON-LD contexts are only ones Fedify ships preloaded (activitystreams, security/v1,
multikey/v1) plus inline terms, since a closed network cannot fetch any other.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from provenance import IdentityError, public_key_from_did

from .keys import ActorKeyError, load_public_key_pem
from .ssrf import DomainError, normalise_domain

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

# Mastodon's rule for usernames it accepts from remote servers.
_USERNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CID = re.compile(r"^[A-Za-z0-9]+$")
_ATTACHMENT_TYPES = {"image": "Image", "video": "Video", "audio": "Audio"}


class DocumentError(ValueError):
    """Input a document cannot be built from (bad URL, username, did, resource, Follow...)."""


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username) or len(username) > 64:
        raise DocumentError(
            f"bad username {username!r}: letters, digits, '_', inner '.' or '-', at most 64"
        )
    return username


@dataclass(frozen=True)
class BridgeSite:
    """This node's public origin, e.g. ``https://alice-node.example``, and its acct: domain."""

    base_url: str
    domain: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.path:
            raise DocumentError(
                f"base_url must be scheme://host[:port] with no path: {self.base_url!r}"
            )
        if not self.domain or self.domain != self.domain.lower():
            raise DocumentError(f"domain must be non-empty lower case: {self.domain!r}")

    @classmethod
    def parse(cls, url: str, *, allow_http_loopback: bool = False) -> BridgeSite:
        """The site for a configured ``ARTDAG_DOMAIN``: ``host``, ``https://host[:port]``, or
        (only with ``allow_http_loopback``, as tests need) ``http://127.0.0.1:port``."""
        text = url.strip() if isinstance(url, str) else ""
        if not text:
            raise DocumentError(f"empty public URL: {url!r}")
        if "://" not in text:
            text = "https://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise DocumentError(f"bad public URL {url!r}: {exc}") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise DocumentError(f"public URL must have no path, query or fragment: {url!r}")
        if parts.username is not None or not parts.hostname:
            raise DocumentError(f"public URL must be scheme://host[:port]: {url!r}")
        try:
            host = normalise_domain(parts.hostname)
        except DomainError as exc:
            raise DocumentError(f"bad host in public URL {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme == "http":
            if not allow_http_loopback:
                raise DocumentError(
                    f"public URL must be https: {url!r} (plain http only on loopback, when "
                    "configured for tests)"
                )
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise DocumentError(f"plain http is allowed only on a loopback address: {url!r}")
        elif scheme != "https":
            raise DocumentError(f"public URL must be https: {url!r}")
        hostport = f"[{host}]" if ":" in host else host
        if port is not None and port != {"https": 443, "http": 80}[scheme]:
            hostport = f"{hostport}:{port}"
        return cls(base_url=f"{scheme}://{hostport}", domain=hostport)

    def url(self, path: str) -> str:
        return self.base_url + path

    def actor_id(self, username: str) -> str:
        return self.url(f"/users/{quote(_check_username(username))}")

    def key_id(self, username: str) -> str:
        return self.actor_id(username) + "#main-key"

    def ed25519_key_id(self, username: str) -> str:
        return self.actor_id(username) + "#ed25519-key"

    def inbox(self, username: str) -> str:
        return self.actor_id(username) + "/inbox"

    def outbox(self, username: str) -> str:
        return self.actor_id(username) + "/outbox"

    def followers(self, username: str) -> str:
        return self.actor_id(username) + "/followers"

    def following(self, username: str) -> str:
        return self.actor_id(username) + "/following"

    @property
    def shared_inbox(self) -> str:
        return self.url("/inbox")

    def profile_url(self, username: str) -> str:
        return self.url(f"/@{quote(_check_username(username))}")

    def note_id(self, username: str, cid: str) -> str:
        return self.url(f"/objects/{quote(_check_username(username))}/{_check_cid(cid)}")

    def create_id(self, username: str, cid: str) -> str:
        return self.url(f"/activities/{quote(_check_username(username))}/{_check_cid(cid)}/create")

    def accept_id(self, username: str, follow_id: str) -> str:
        digest = hashlib.sha256(follow_id.encode("utf-8")).hexdigest()[:32]
        return self.url(f"/activities/{quote(_check_username(username))}/accept/{digest}")

    def page_id(self, collection_id: str, page: int) -> str:
        if page < 1:
            raise DocumentError(f"collection pages count from 1, got {page}")
        return f"{collection_id}?page={page}"

    def username_for_actor(self, actor_id: str) -> str | None:
        """The local username an actor URL of this site names, or None."""
        prefix = self.url("/users/")
        name = actor_id[len(prefix) :] if actor_id.startswith(prefix) else ""
        return name if name and _USERNAME.match(name) else None


def _check_cid(cid: str) -> str:
    if not isinstance(cid, str) or not _CID.match(cid):
        raise DocumentError(f"not a CID string: {cid!r}")
    return cid


def ed25519_multibase(did: str) -> str:
    """The FEP-521a ``publicKeyMultibase`` of an Ed25519 did:key.

    A did:key is ``did:key:`` + base58btc multibase of (multicodec 0xed01 + 32-byte key), which
    is exactly the Multikey encoding, so the multibase is the did's method-specific id.
    """
    try:
        public_key_from_did(did)
    except IdentityError as exc:
        raise DocumentError(str(exc)) from None
    return did.removeprefix("did:key:")


@dataclass(frozen=True)
class Creator:
    """A local creator as the fediverse sees her: username, did:key, RSA public key, profile."""

    username: str
    did: str
    public_key_pem: str
    name: str = ""
    summary: str = ""

    def __post_init__(self) -> None:
        _check_username(self.username)
        ed25519_multibase(self.did)
        try:
            key = load_public_key_pem(self.public_key_pem)
        except ActorKeyError as exc:
            raise DocumentError(f"creator {self.username}: {exc}") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise DocumentError(f"creator {self.username}: publicKeyPem must be an RSA key")


@dataclass(frozen=True)
class WorkInfo:
    """A work to publish: its CID, display name, MIME type, size, alt text and two URLs."""

    cid: str
    name: str
    mime: str
    width: int | None
    height: int | None
    alt: str
    provenance_url: str
    gateway_url: str

    def __post_init__(self) -> None:
        _check_cid(self.cid)
        if not _MIME.match(self.mime):
            raise DocumentError(f"work {self.cid}: bad MIME type {self.mime!r}")
        for label, size in (("width", self.width), ("height", self.height)):
            if size is not None and (type(size) is not int or size <= 0):
                raise DocumentError(f"work {self.cid}: {label} must be a positive int: {size!r}")
        for label, url in (
            ("provenance_url", self.provenance_url),
            ("gateway_url", self.gateway_url),
        ):
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                raise DocumentError(f"work {self.cid}: {label} must be an http(s) URL: {url!r}")


def parse_acct(resource: str) -> tuple[str, str]:
    """``(username, domain)`` from ``acct:user@domain`` (or bare ``user@domain``).

    The domain is normalised (lower case, IDNA); :class:`DocumentError` names what is wrong.
    """
    if not isinstance(resource, str) or not resource.strip():
        raise DocumentError(f"empty WebFinger resource: {resource!r}")
    text = resource.strip()
    if text[:5].lower() == "acct:":
        text = text[5:]
    text = text.removeprefix("@")
    user, sep, domain = text.rpartition("@")
    if not sep or not user or not domain:
        raise DocumentError(f"WebFinger resource must be acct:user@domain: {resource!r}")
    if "@" in user or not _USERNAME.match(user):
        raise DocumentError(f"bad user name in WebFinger resource: {resource!r}")
    host, _, port = domain.partition(":")
    if port and not port.isdigit():
        raise DocumentError(f"bad port in WebFinger resource: {resource!r}")
    try:
        host = normalise_domain(host)
    except DomainError as exc:
        raise DocumentError(f"bad domain in WebFinger resource {resource!r}: {exc}") from None
    return user, f"{host}:{port}" if port else host


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
