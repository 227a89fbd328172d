"""Who the bridge publishes and at which URLs: :class:`BridgeSite` (this node's public origin,
which builds every id the documents use), :class:`Creator` and :class:`WorkInfo` (checked when
made), ``acct:`` resources (:func:`parse_acct`) and :class:`DocumentError` for anything a
document cannot be built from.

Every id is built by a :class:`BridgeSite` method, so routes can serve exactly these paths:

- ``/users/<username>`` actor; ``#main-key`` (RSA, HTTP Signatures), ``#ed25519-key``
  (FEP-521a ``assertionMethod``, the creator's did:key); ``/inbox``, ``/outbox``,
  ``/followers``, ``/following`` under it; ``/inbox`` shared inbox; ``/@<username>`` profile
- ``/objects/<username>/<cid>`` Note and ``/activities/<username>/<cid>/create`` its Create —
  derived from the CID, so re-publishing a work gives the same ids (receivers deduplicate)
- ``/activities/<username>/accept/<hash of the Follow id>`` Accept — one id per Follow, so a
  retried Accept is the same activity
- collection pages: ``<collection>?page=<n>``

The documents themselves are built in :mod:`activitypub_bridge.documents`, which re-exports
these names.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from provenance import IdentityError, public_key_from_did

from .keys import ActorKeyError, load_public_key_pem
from .ssrf import DomainError, normalise_domain

__all__ = [
    "BridgeSite",
    "Creator",
    "DocumentError",
    "WorkInfo",
    "ed25519_multibase",
    "parse_acct",
]

# Mastodon's rule for usernames it accepts from remote servers.
_USERNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CID = re.compile(r"^[A-Za-z0-9]+$")


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
