"""The sections of ``config.toml``: one frozen dataclass per ``[section]``.

A field's name is its key in the file, its annotation the type the loader coerces to
(``tuple[str, ...]``, ``bool``, ``int``, ``float`` or ``str``), its default the built-in value.
Each section checks its own values (``check``), naming the key or variable that held a bad one
through ``name``; the loader (``daemon.config.loading``) walks these fields, so adding a key here
is all it takes to read it from the file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from activitypub_bridge.ssrf import DomainError, parse_domain_block
from renderer.market.policy import PolicyError, VolunteerPolicy

__all__ = [
    "ConfigError",
    "Namer",
    "NodeConfig",
    "HttpConfig",
    "StoreConfig",
    "ImportConfig",
    "P2pConfig",
    "VolunteerConfig",
    "MarketConfig",
    "AnchorConfig",
    "ActivityPubConfig",
    "PinningConfig",
    "GatewayConfig",
    "MetricsConfig",
]

# key -> where its value came from (``ARTDAG_PORT``, ``/home/config.toml [http] port``, ...)
Namer = Callable[[str], str]


class ConfigError(ValueError):
    """The configuration file or an environment variable holds a bad value."""


def _bad(name: Namer, key: str, message: str) -> ConfigError:
    return ConfigError(f"{name(key)}: {message}")


@dataclass(frozen=True)
class NodeConfig:
    SECTION: ClassVar[str] = "node"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    user: str = "creator"
    domain: str = "localhost"  # the public URL; checked with [activitypub] by Config.check

    def check(self, name: Namer) -> None:
        if not self.user.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise _bad(
                name, "user", f"expected letters, digits, '-', '_' or '.', got {self.user!r}"
            )


@dataclass(frozen=True)
class HttpConfig:
    SECTION: ClassVar[str] = "http"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"tls_cert", "tls_key"})

    host: str = "127.0.0.1"
    port: int = 8200
    max_upload_bytes: int = 64 << 30
    tls_cert: str = ""  # serve https with this certificate (PEM) and key, else plain http
    tls_key: str = ""

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def check(self, name: Namer) -> None:
        if not 0 <= self.port <= 65535:
            raise _bad(name, "port", f"expected a port number 0..65535, got {self.port}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise _bad(
                name,
                "tls_cert" if self.tls_cert else "tls_key",
                "set both tls_cert and tls_key (ARTDAG_TLS_CERT, ARTDAG_TLS_KEY), or neither",
            )
        for key, value in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if value and not Path(value).expanduser().is_file():
                raise _bad(name, key, f"no such file: {Path(value).expanduser()}")
        if self.tls_key and Path(self.tls_key).expanduser().stat().st_mode & 0o077:
            raise _bad(name, "tls_key", f"{self.tls_key} is readable by others; chmod 600 it")
        if self.max_upload_bytes < 0:
            raise _bad(name, "max_upload_bytes", "must not be negative")


@dataclass(frozen=True)
class StoreConfig:
    SECTION: ClassVar[str] = "store"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    backend: str = "embedded"
    kubo_url: str = "http://127.0.0.1:5001"
    sync: str = "batch"
    hash_on_read: bool = False  # re-hash blocks on every read (always on write and in verify)

    def check(self, name: Namer) -> None:
        if self.backend not in ("embedded", "kubo"):
            raise _bad(name, "backend", f"expected 'embedded' or 'kubo', got {self.backend!r}")
        if self.sync not in ("always", "batch", "never"):
            raise _bad(name, "sync", f"expected 'always', 'batch' or 'never', got {self.sync!r}")
        if not self.kubo_url.startswith(("http://", "https://")):
            raise _bad(name, "kubo_url", f"expected an http(s) URL, got {self.kubo_url!r}")


@dataclass(frozen=True)
class ImportConfig:
    SECTION: ClassVar[str] = "import"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    chunk_size: int = 1 << 20
    cid_version: int = 1
    raw_leaves: bool = True

    def check(self, name: Namer) -> None:
        if not 1 <= self.chunk_size <= 1 << 20:
            raise _bad(name, "chunk_size", f"expected 1..1048576 bytes, got {self.chunk_size}")
        if self.cid_version not in (0, 1):
            raise _bad(name, "cid_version", f"expected 0 or 1, got {self.cid_version}")


@dataclass(frozen=True)
class P2pConfig:
    SECTION: ClassVar[str] = "p2p"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    enabled: bool = True
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001",)
    bootstrap: tuple[str, ...] = ()
    mdns: bool = True
    dht: bool = True
    max_fetch_inflight: int = 32

    def check(self, name: Namer) -> None:
        for key, addrs in (("listen", self.listen), ("bootstrap", self.bootstrap)):
            for addr in addrs:
                if not addr.startswith("/"):
                    raise _bad(
                        name, key, f"expected multiaddrs like /ip4/1.2.3.4/tcp/4001, got {addr!r}"
                    )
        for addr in self.bootstrap:
            if "/p2p/" not in addr:
                raise _bad(name, "bootstrap", f"a bootstrap address needs /p2p/<peer id>: {addr!r}")
        if not 1 <= self.max_fetch_inflight <= 1024:
            raise _bad(
                name, "max_fetch_inflight", f"expected 1..1024, got {self.max_fetch_inflight}"
            )


@dataclass(frozen=True)
class VolunteerConfig:
    """This daemon renders steps for others (see renderer.market.policy)."""

    SECTION: ClassVar[str] = "volunteer"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    enabled: bool = False
    max_jobs: int = 1
    niceness: int = 10
    cpu_share: float = 0.5
    hours: tuple[str, ...] = ()
    idle_load: float = 0.8
    allowed_effects: tuple[str, ...] = ()  # empty: every built-in effect
    max_input_bytes: int = 2 << 30
    max_input_seconds: float = 600.0

    def policy(self) -> VolunteerPolicy:
        """The section as the market's policy (raises PolicyError if bad; ``load_config`` has
        already checked it)."""
        return VolunteerPolicy(
            max_jobs=self.max_jobs,
            niceness=self.niceness,
            cpu_share=self.cpu_share,
            hours=self.hours,
            idle_load=self.idle_load,
            allowed_effects=frozenset(self.allowed_effects) or None,
            max_input_bytes=self.max_input_bytes,
            max_input_seconds=self.max_input_seconds,
        )

    def check(self, name: Namer) -> None:
        try:
            self.policy()
        except PolicyError as exc:  # exc.key is the policy's field, named as the key here
            raise _bad(name, exc.key, exc.detail) from None


@dataclass(frozen=True)
class MarketConfig:
    """This daemon as a requester of renders."""

    SECTION: ClassVar[str] = "market"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    replicas: int = 1
    lease_seconds: float = 20.0
    heartbeat_seconds: float = 5.0
    deadline_seconds: float = 1800.0
    offer_wait_seconds: float = 60.0
    adaptive: bool = True
    trust_after: int = 10
    spot_check: float = 0.1

    def check(self, name: Namer) -> None:
        if not 1 <= self.replicas <= 9:
            raise _bad(name, "replicas", f"expected 1..9, got {self.replicas}")
        if self.lease_seconds < 2:
            raise _bad(
                name, "lease_seconds", f"expected at least 2 seconds, got {self.lease_seconds:g}"
            )
        if not 0 < self.heartbeat_seconds < self.lease_seconds / 2:
            raise _bad(
                name,
                "heartbeat_seconds",
                f"expected more than 0 and less than half of lease_seconds "
                f"({self.lease_seconds:g}), got {self.heartbeat_seconds:g}",
            )
        for key, value in (
            ("deadline_seconds", self.deadline_seconds),
            ("offer_wait_seconds", self.offer_wait_seconds),
        ):
            if value <= 0:
                raise _bad(name, key, f"must be positive, got {value:g}")
        if self.trust_after < 1:
            raise _bad(name, "trust_after", f"expected at least 1, got {self.trust_after}")
        if not 0 <= self.spot_check <= 1:
            raise _bad(name, "spot_check", f"expected a fraction 0..1, got {self.spot_check:g}")


@dataclass(frozen=True)
class AnchorConfig:
    """OpenTimestamps calendars and where Bitcoin block headers come from."""

    SECTION: ClassVar[str] = "anchor"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    calendars: tuple[str, ...] = (
        "https://a.pool.opentimestamps.org",
        "https://b.pool.opentimestamps.org",
        "https://a.pool.eternitywall.com",
        "https://ots.btc.catallaxy.com",
    )
    header_source: str = "https://blockstream.info/api"

    def check(self, name: Namer) -> None:
        for key, urls in (("calendars", self.calendars), ("header_source", (self.header_source,))):
            for url in urls:
                if not url.startswith(("http://", "https://")):
                    raise _bad(name, key, f"expected an http(s) URL, got {url!r}")


@dataclass(frozen=True)
class ActivityPubConfig:
    """The fediverse bridge; the public URL is [node] domain / ARTDAG_DOMAIN."""

    SECTION: ClassVar[str] = "activitypub"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"display_name", "summary"})

    enabled: bool = True
    display_name: str = ""
    summary: str = "Works published from an artdag node, with their provenance."
    allow_http_loopback: bool = False  # tests: serve http://127.0.0.1:PORT as the public URL
    allow_private_fetch: bool = False  # tests: fetch http:// and loopback/private addresses
    blocked_domains: tuple[str, ...] = ()
    first_knock: str = "rfc9421"
    max_inbox_bytes: int = 1 << 20
    delivery_concurrency: int = 16
    delivery_per_host: int = 2

    def check(self, name: Namer) -> None:
        for domain in self.blocked_domains:
            try:
                parse_domain_block(domain)
            except DomainError as exc:
                raise _bad(name, "blocked_domains", str(exc)) from None
        if self.first_knock not in ("rfc9421", "cavage"):
            raise _bad(
                name, "first_knock", f"expected 'rfc9421' or 'cavage', got {self.first_knock!r}"
            )
        if not 1024 <= self.max_inbox_bytes <= 64 << 20:
            raise _bad(
                name, "max_inbox_bytes", f"expected 1024..67108864, got {self.max_inbox_bytes}"
            )
        if not 1 <= self.delivery_concurrency <= 1024:
            raise _bad(
                name, "delivery_concurrency", f"expected 1..1024, got {self.delivery_concurrency}"
            )
        if not 1 <= self.delivery_per_host <= 64:
            raise _bad(name, "delivery_per_host", f"expected 1..64, got {self.delivery_per_host}")


@dataclass(frozen=True)
class PinningConfig:
    """Policies, quota, garbage collection, the Pinning Service API."""

    SECTION: ClassVar[str] = "pinning"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    follow_creators: tuple[str, ...] = ()  # did:keys whose published repos we pin
    popular_count: int = 0  # pin the N most used works (0: off)
    popular_half_life_hours: float = 72.0
    quota_bytes: int = 0  # 0: no quota
    policy_interval_seconds: float = 60.0
    max_concurrent: int = 4  # DAG fetches for policy and remote pins at once
    fetch_timeout_seconds: float = 600.0
    service_api: bool = True  # serve the IPFS Pinning Service API at /pins
    allow_private_origins: bool = False  # tests: dial loopback/private origins of /pins
    max_concurrent_per_token: int = 0  # fetch slots one token may hold; 0: half, rounded up
    max_pending_per_token: int = 100  # queued + pinning requests of one token
    max_meta_bytes: int = 4096  # a request's meta, as compact UTF-8 JSON
    max_name_chars: int = 255  # the spec's own maximum
    requests_per_minute: int = 300  # /pins requests of one token; 0: unlimited
    burst: int = 100
    gc_interval_seconds: float = 3600.0  # 0: no periodic collection
    gc_grace_seconds: float = 600.0  # unreachable blocks younger than this are kept

    def check(self, name: Namer) -> None:
        for did in self.follow_creators:
            if not did.startswith("did:key:z"):
                raise _bad(name, "follow_creators", f"expected did:key identifiers, got {did!r}")
        for key, count in (
            ("popular_count", self.popular_count),
            ("quota_bytes", self.quota_bytes),
        ):
            if count < 0:
                raise _bad(name, key, f"must not be negative, got {count}")
        if self.popular_half_life_hours <= 0:
            raise _bad(name, "popular_half_life_hours", "must be positive")
        for key, seconds in (
            ("policy_interval_seconds", self.policy_interval_seconds),
            ("fetch_timeout_seconds", self.fetch_timeout_seconds),
        ):
            if seconds <= 0:
                raise _bad(name, key, f"must be positive, got {seconds:g}")
        for key, seconds in (
            ("gc_interval_seconds", self.gc_interval_seconds),
            ("gc_grace_seconds", self.gc_grace_seconds),
        ):
            if seconds < 0:
                raise _bad(name, key, f"must not be negative, got {seconds:g}")
        if not 0 <= self.max_concurrent_per_token <= self.max_concurrent:
            raise _bad(
                name,
                "max_concurrent_per_token",
                f"expected 0 (half of max_concurrent) up to max_concurrent "
                f"({self.max_concurrent}), got {self.max_concurrent_per_token}",
            )
        if not 1 <= self.max_name_chars <= 255:
            raise _bad(
                name,
                "max_name_chars",
                f"expected 1..255 (the spec's limit), got {self.max_name_chars}",
            )
        if not 0 <= self.requests_per_minute <= 1_000_000:
            raise _bad(
                name,
                "requests_per_minute",
                f"expected 0..1000000, got {self.requests_per_minute}",
            )
        for key, value, top in (
            ("max_pending_per_token", self.max_pending_per_token, 1_000_000),
            ("max_meta_bytes", self.max_meta_bytes, 1 << 20),
            ("burst", self.burst, 1_000_000),
            ("max_concurrent", self.max_concurrent, 64),
        ):
            if not 1 <= value <= top:
                raise _bad(name, key, f"expected 1..{top}, got {value}")


@dataclass(frozen=True)
class GatewayConfig:
    """Protection of the public /ipfs/ gateway."""

    SECTION: ClassVar[str] = "gateway"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    requests_per_minute: int = 600  # per client; 0: unlimited
    burst: int = 120
    max_concurrent_fetches: int = 8
    fetch_blocks_per_minute: int = 1200
    trust_forwarded_for: bool = False  # behind a reverse proxy on this host

    def check(self, name: Namer) -> None:
        if self.requests_per_minute < 0:
            raise _bad(
                name, "requests_per_minute", f"must not be negative, got {self.requests_per_minute}"
            )
        for key, value, top in (
            ("max_concurrent_fetches", self.max_concurrent_fetches, 256),
            ("burst", self.burst, 1_000_000),
            ("fetch_blocks_per_minute", self.fetch_blocks_per_minute, 10_000_000),
        ):
            if not 1 <= value <= top:
                raise _bad(name, key, f"expected 1..{top}, got {value}")


@dataclass(frozen=True)
class MetricsConfig:
    SECTION: ClassVar[str] = "metrics"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()

    public: bool = False  # else /metrics answers loopback clients or the API token

    def check(self, name: Namer) -> None:
        """Nothing to check: the one key is a boolean."""
