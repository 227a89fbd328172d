"""Configuration: ``$ARTDAG_HOME/config.toml`` with environment overrides.

Precedence, lowest first: built-in defaults, the TOML file, ``ARTDAG_*`` environment variables,
command-line flags. Every bad value is reported with the key or variable that holds it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from activitypub_bridge.documents import BridgeSite, DocumentError
from activitypub_bridge.ssrf import DomainError, parse_domain_block
from renderer.market.policy import PolicyError, VolunteerPolicy

__all__ = ["Config", "ConfigError", "load_config", "default_home", "ENVIRONMENT"]


class ConfigError(ValueError):
    """The configuration file or an environment variable holds a bad value."""


def default_home() -> Path:
    return Path(os.environ.get("ARTDAG_HOME") or Path.home() / ".artdag").expanduser()


@dataclass(frozen=True)
class Config:
    home: Path = field(default_factory=default_home)
    # [node]
    user: str = "creator"
    domain: str = "localhost"
    # [http]
    host: str = "127.0.0.1"
    port: int = 8200
    max_upload_bytes: int = 64 << 30
    tls_cert: str = ""  # serve https with this certificate (PEM) and key, else plain http
    tls_key: str = ""
    # [store]
    store: str = "embedded"
    kubo_url: str = "http://127.0.0.1:5001"
    sync: str = "batch"
    hash_on_read: bool = False  # re-hash blocks on every read (always on write and in verify)
    # [import]
    chunk_size: int = 1 << 20
    cid_version: int = 1
    raw_leaves: bool = True
    # [p2p]
    p2p: bool = True
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001",)
    bootstrap: tuple[str, ...] = ()
    mdns: bool = True
    dht: bool = True
    max_fetch_inflight: int = 32
    # [volunteer] (this daemon renders steps for others; see renderer.market.policy)
    volunteer: bool = False
    volunteer_max_jobs: int = 1
    volunteer_niceness: int = 10
    volunteer_cpu_share: float = 0.5
    volunteer_hours: tuple[str, ...] = ()
    volunteer_idle_load: float = 0.8
    volunteer_allowed_effects: tuple[str, ...] = ()  # empty: every built-in effect
    volunteer_max_input_bytes: int = 2 << 30
    volunteer_max_input_seconds: float = 600.0
    # [market] (this daemon as a requester of renders)
    market_replicas: int = 1
    lease_seconds: float = 20.0
    heartbeat_seconds: float = 5.0
    market_deadline_seconds: float = 1800.0
    offer_wait_seconds: float = 60.0
    market_adaptive: bool = True
    trust_after: int = 10
    spot_check: float = 0.1
    # [anchor] (OpenTimestamps calendars and where Bitcoin block headers come from)
    anchor_calendars: tuple[str, ...] = (
        "https://a.pool.opentimestamps.org",
        "https://b.pool.opentimestamps.org",
        "https://a.pool.eternitywall.com",
        "https://ots.btc.catallaxy.com",
    )
    anchor_header_source: str = "https://blockstream.info/api"
    # [activitypub] (the fediverse bridge; the public URL is [node] domain / ARTDAG_DOMAIN)
    activitypub: bool = True
    ap_display_name: str = ""
    ap_summary: str = "Works published from an artdag node, with their provenance."
    ap_allow_http_loopback: bool = False  # tests: serve http://127.0.0.1:PORT as the public URL
    ap_allow_private_fetch: bool = False  # tests: fetch http:// and loopback/private addresses
    ap_blocked_domains: tuple[str, ...] = ()
    ap_first_knock: str = "rfc9421"
    ap_max_inbox_bytes: int = 1 << 20
    ap_delivery_concurrency: int = 16
    ap_delivery_per_host: int = 2
    # [pinning] (policies, quota, garbage collection, the Pinning Service API)
    pin_follow_creators: tuple[str, ...] = ()  # did:keys whose published repos we pin
    pin_popular_count: int = 0  # pin the N most used works (0: off)
    pin_popular_half_life_hours: float = 72.0
    pin_quota_bytes: int = 0  # 0: no quota
    pin_policy_interval_seconds: float = 60.0
    pin_max_concurrent: int = 4  # DAG fetches for policy and remote pins at once
    pin_fetch_timeout_seconds: float = 600.0
    pinning_api: bool = True  # serve the IPFS Pinning Service API at /pins
    pin_allow_private_origins: bool = False  # tests: dial loopback/private origins of /pins
    pin_max_concurrent_per_token: int = 0  # fetch slots one token may hold; 0: half, rounded up
    pin_max_pending_per_token: int = 100  # queued + pinning requests of one token
    pin_max_meta_bytes: int = 4096  # a request's meta, as compact UTF-8 JSON
    pin_max_name_chars: int = 255  # the spec's own maximum
    pin_requests_per_minute: int = 300  # /pins requests of one token; 0: unlimited
    pin_burst: int = 100
    gc_interval_seconds: float = 3600.0  # 0: no periodic collection
    gc_grace_seconds: float = 600.0  # unreachable blocks younger than this are kept
    # [gateway] (protection of the public /ipfs/ gateway)
    gateway_requests_per_minute: int = 600  # per client; 0: unlimited
    gateway_burst: int = 120
    gateway_max_concurrent_fetches: int = 8
    gateway_fetch_blocks_per_minute: int = 1200
    gateway_trust_forwarded_for: bool = False  # behind a reverse proxy on this host
    # [metrics]
    metrics_public: bool = False  # else /metrics answers loopback clients or the API token

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def identity_path(self) -> Path:
        return self.home / "identity.key"

    @property
    def token_path(self) -> Path:
        return self.home / "api-token"

    @property
    def store_path(self) -> Path:
        return self.home / "store"

    @property
    def index_path(self) -> Path:
        return self.home / "index.db"

    @property
    def node_key_path(self) -> Path:
        """The libp2p host key (Ed25519, distinct from the creator's signing identity)."""
        return self.home / "node.key"

    @property
    def p2p_db_path(self) -> Path:
        return self.home / "p2p.db"

    @property
    def web_password_path(self) -> Path:
        """The owner's web UI password (scrypt hash, mode 0600)."""
        return self.home / "web-password"

    @property
    def web_secret_path(self) -> Path:
        """The key that signs web UI session cookies (mode 0600)."""
        return self.home / "web-secret"

    @property
    def web_sessions_path(self) -> Path:
        """The web UI sessions still open (ids and expiry; logging out removes one)."""
        return self.home / "web-sessions"

    @property
    def activitypub_db_path(self) -> Path:
        """Followers, domain blocks, emitted activities and processed inbound ids."""
        return self.home / "activitypub.db"

    @property
    def deliveries_path(self) -> Path:
        return self.home / "deliveries.db"

    @property
    def pinning_tokens_path(self) -> Path:
        """Bearer tokens of Pinning Service API clients (mode 0600)."""
        return self.home / "pinning-tokens"

    @property
    def pinning_db_path(self) -> Path:
        """Pin requests received through the Pinning Service API."""
        return self.home / "pinning.db"

    @property
    def popularity_db_path(self) -> Path:
        """Decayed usage scores of works (gateway requests, likes, boosts)."""
        return self.home / "popularity.db"

    @property
    def actor_key_path(self) -> Path:
        """The creator's RSA key for HTTP Signatures (mode 0600)."""
        return self.home / "actor-rsa.pem"

    def bridge_site(self) -> BridgeSite:
        """The public origin the fediverse sees (``domain``: a host, or an https URL; plain
        http only on loopback with ``allow_http_loopback``). Raises DocumentError if bad."""
        return BridgeSite.parse(self.domain, allow_http_loopback=self.ap_allow_http_loopback)

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def volunteer_policy(self) -> VolunteerPolicy:
        """The ``[volunteer]`` section as the market's policy (raises PolicyError if bad;
        ``load_config`` has already checked it)."""
        return VolunteerPolicy(
            max_jobs=self.volunteer_max_jobs,
            niceness=self.volunteer_niceness,
            cpu_share=self.volunteer_cpu_share,
            hours=self.volunteer_hours,
            idle_load=self.volunteer_idle_load,
            allowed_effects=frozenset(self.volunteer_allowed_effects) or None,
            max_input_bytes=self.volunteer_max_input_bytes,
            max_input_seconds=self.volunteer_max_input_seconds,
        )

    def to_toml(self) -> dict[str, dict[str, Any]]:
        return {
            section: {key: getattr(self, attr) for key, attr in keys.items()}
            for section, keys in _SECTIONS.items()
        }


# TOML section -> {key in file: Config attribute}
_SECTIONS: dict[str, dict[str, str]] = {
    "node": {"user": "user", "domain": "domain"},
    "http": {
        "host": "host",
        "port": "port",
        "max_upload_bytes": "max_upload_bytes",
        "tls_cert": "tls_cert",
        "tls_key": "tls_key",
    },
    "store": {
        "backend": "store",
        "kubo_url": "kubo_url",
        "sync": "sync",
        "hash_on_read": "hash_on_read",
    },
    "import": {
        "chunk_size": "chunk_size",
        "cid_version": "cid_version",
        "raw_leaves": "raw_leaves",
    },
    "p2p": {
        "enabled": "p2p",
        "listen": "listen",
        "bootstrap": "bootstrap",
        "mdns": "mdns",
        "dht": "dht",
        "max_fetch_inflight": "max_fetch_inflight",
    },
    "volunteer": {
        "enabled": "volunteer",
        "max_jobs": "volunteer_max_jobs",
        "niceness": "volunteer_niceness",
        "cpu_share": "volunteer_cpu_share",
        "hours": "volunteer_hours",
        "idle_load": "volunteer_idle_load",
        "allowed_effects": "volunteer_allowed_effects",
        "max_input_bytes": "volunteer_max_input_bytes",
        "max_input_seconds": "volunteer_max_input_seconds",
    },
    "market": {
        "replicas": "market_replicas",
        "lease_seconds": "lease_seconds",
        "heartbeat_seconds": "heartbeat_seconds",
        "deadline_seconds": "market_deadline_seconds",
        "offer_wait_seconds": "offer_wait_seconds",
        "adaptive": "market_adaptive",
        "trust_after": "trust_after",
        "spot_check": "spot_check",
    },
    "anchor": {
        "calendars": "anchor_calendars",
        "header_source": "anchor_header_source",
    },
    "activitypub": {
        "enabled": "activitypub",
        "display_name": "ap_display_name",
        "summary": "ap_summary",
        "allow_http_loopback": "ap_allow_http_loopback",
        "allow_private_fetch": "ap_allow_private_fetch",
        "blocked_domains": "ap_blocked_domains",
        "first_knock": "ap_first_knock",
        "max_inbox_bytes": "ap_max_inbox_bytes",
        "delivery_concurrency": "ap_delivery_concurrency",
        "delivery_per_host": "ap_delivery_per_host",
    },
    "pinning": {
        "follow_creators": "pin_follow_creators",
        "popular_count": "pin_popular_count",
        "popular_half_life_hours": "pin_popular_half_life_hours",
        "quota_bytes": "pin_quota_bytes",
        "policy_interval_seconds": "pin_policy_interval_seconds",
        "max_concurrent": "pin_max_concurrent",
        "fetch_timeout_seconds": "pin_fetch_timeout_seconds",
        "service_api": "pinning_api",
        "allow_private_origins": "pin_allow_private_origins",
        "max_concurrent_per_token": "pin_max_concurrent_per_token",
        "max_pending_per_token": "pin_max_pending_per_token",
        "max_meta_bytes": "pin_max_meta_bytes",
        "max_name_chars": "pin_max_name_chars",
        "requests_per_minute": "pin_requests_per_minute",
        "burst": "pin_burst",
        "gc_interval_seconds": "gc_interval_seconds",
        "gc_grace_seconds": "gc_grace_seconds",
    },
    "gateway": {
        "requests_per_minute": "gateway_requests_per_minute",
        "burst": "gateway_burst",
        "max_concurrent_fetches": "gateway_max_concurrent_fetches",
        "fetch_blocks_per_minute": "gateway_fetch_blocks_per_minute",
        "trust_forwarded_for": "gateway_trust_forwarded_for",
    },
    "metrics": {"public": "metrics_public"},
}

# environment variable -> Config attribute
ENVIRONMENT: dict[str, str] = {
    "ARTDAG_USER": "user",
    "ARTDAG_DOMAIN": "domain",
    "ARTDAG_HOST": "host",
    "ARTDAG_PORT": "port",
    "ARTDAG_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "ARTDAG_TLS_CERT": "tls_cert",
    "ARTDAG_TLS_KEY": "tls_key",
    "ARTDAG_STORE": "store",
    "ARTDAG_KUBO_URL": "kubo_url",
    "ARTDAG_SYNC": "sync",
    "ARTDAG_CHUNK_SIZE": "chunk_size",
    "ARTDAG_CID_VERSION": "cid_version",
    "ARTDAG_RAW_LEAVES": "raw_leaves",
    "ARTDAG_P2P": "p2p",
    "ARTDAG_LISTEN": "listen",
    "ARTDAG_BOOTSTRAP": "bootstrap",
    "ARTDAG_MDNS": "mdns",
    "ARTDAG_DHT": "dht",
    "ARTDAG_ANCHOR_CALENDARS": "anchor_calendars",
    "ARTDAG_ANCHOR_HEADER_SOURCE": "anchor_header_source",
    "ARTDAG_VOLUNTEER": "volunteer",
    "ARTDAG_MAX_JOBS": "volunteer_max_jobs",
    "ARTDAG_IDLE_LOAD": "volunteer_idle_load",
    "ARTDAG_ALLOWED_EFFECTS": "volunteer_allowed_effects",
    "ARTDAG_REPLICAS": "market_replicas",
    "ARTDAG_LEASE_SECONDS": "lease_seconds",
    "ARTDAG_HEARTBEAT_SECONDS": "heartbeat_seconds",
    "ARTDAG_OFFER_WAIT_SECONDS": "offer_wait_seconds",
    "ARTDAG_ACTIVITYPUB": "activitypub",
    "ARTDAG_AP_ALLOW_HTTP_LOOPBACK": "ap_allow_http_loopback",
    "ARTDAG_AP_ALLOW_PRIVATE_FETCH": "ap_allow_private_fetch",
    "ARTDAG_AP_BLOCKED_DOMAINS": "ap_blocked_domains",
    "ARTDAG_AP_FIRST_KNOCK": "ap_first_knock",
    "ARTDAG_FOLLOW_CREATORS": "pin_follow_creators",
    "ARTDAG_POPULAR_COUNT": "pin_popular_count",
    "ARTDAG_QUOTA_BYTES": "pin_quota_bytes",
    "ARTDAG_GC_INTERVAL_SECONDS": "gc_interval_seconds",
    "ARTDAG_GC_GRACE_SECONDS": "gc_grace_seconds",
    "ARTDAG_GATEWAY_REQUESTS_PER_MINUTE": "gateway_requests_per_minute",
    "ARTDAG_METRICS_PUBLIC": "metrics_public",
}

# [volunteer] policy key -> Config attribute (for naming the key of a PolicyError)
_POLICY_ATTRS = {key: attr for key, attr in _SECTIONS["volunteer"].items() if key != "enabled"}

_TYPES = {f.name: f.type for f in fields(Config)}
_MAY_BE_EMPTY = {"ap_display_name", "ap_summary", "tls_cert", "tls_key"}


def _coerce(attr: str, value: Any, where: str) -> Any:
    kind = _TYPES[attr]
    if kind == "tuple[str, ...]":
        # TOML gives a list; an environment variable or flag gives comma-separated text.
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(i.strip() for i in items if i.strip())
    if kind == "bool":
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if kind == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if isinstance(value, str) and attr in _MAY_BE_EMPTY:
        return value.strip()
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _check(config: Config, where: dict[str, str]) -> Config:
    def bad(attr: str, message: str) -> ConfigError:
        return ConfigError(f"{where.get(attr, attr)}: {message}")

    if not 0 <= config.port <= 65535:
        raise bad("port", f"expected a port number 0..65535, got {config.port}")
    if config.store not in ("embedded", "kubo"):
        raise bad("store", f"expected 'embedded' or 'kubo', got {config.store!r}")
    if config.sync not in ("always", "batch", "never"):
        raise bad("sync", f"expected 'always', 'batch' or 'never', got {config.sync!r}")
    if not 1 <= config.chunk_size <= 1 << 20:
        raise bad("chunk_size", f"expected 1..1048576 bytes, got {config.chunk_size}")
    if config.cid_version not in (0, 1):
        raise bad("cid_version", f"expected 0 or 1, got {config.cid_version}")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise bad(
            "tls_cert" if config.tls_cert else "tls_key",
            "set both tls_cert and tls_key (ARTDAG_TLS_CERT, ARTDAG_TLS_KEY), or neither",
        )
    for attr in ("tls_cert", "tls_key"):
        path = Path(getattr(config, attr)).expanduser() if getattr(config, attr) else None
        if path is not None and not path.is_file():
            raise bad(attr, f"no such file: {path}")
    if config.tls_key and Path(config.tls_key).expanduser().stat().st_mode & 0o077:
        raise bad("tls_key", f"{config.tls_key} is readable by others; chmod 600 it")
    if config.max_upload_bytes < 0:
        raise bad("max_upload_bytes", "must not be negative")
    for url in (*config.anchor_calendars, config.anchor_header_source):
        if not url.startswith(("http://", "https://")):
            attr = (
                "anchor_header_source" if url == config.anchor_header_source else "anchor_calendars"
            )
            raise bad(attr, f"expected an http(s) URL, got {url!r}")
    if not config.kubo_url.startswith(("http://", "https://")):
        raise bad("kubo_url", f"expected an http(s) URL, got {config.kubo_url!r}")
    for attr in ("listen", "bootstrap"):
        for addr in getattr(config, attr):
            if not addr.startswith("/"):
                raise bad(attr, f"expected multiaddrs like /ip4/1.2.3.4/tcp/4001, got {addr!r}")
    for addr in config.bootstrap:
        if "/p2p/" not in addr:
            raise bad("bootstrap", f"a bootstrap address needs /p2p/<peer id>: {addr!r}")
    if not 1 <= config.max_fetch_inflight <= 1024:
        raise bad("max_fetch_inflight", f"expected 1..1024, got {config.max_fetch_inflight}")
    if not config.user.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise bad("user", f"expected letters, digits, '-', '_' or '.', got {config.user!r}")
    try:
        config.volunteer_policy()
    except PolicyError as exc:
        raise bad(_POLICY_ATTRS[exc.key], exc.detail) from None
    if not 1 <= config.market_replicas <= 9:
        raise bad("market_replicas", f"expected 1..9, got {config.market_replicas}")
    if config.lease_seconds < 2:
        raise bad("lease_seconds", f"expected at least 2 seconds, got {config.lease_seconds:g}")
    if not 0 < config.heartbeat_seconds < config.lease_seconds / 2:
        raise bad(
            "heartbeat_seconds",
            f"expected more than 0 and less than half of lease_seconds "
            f"({config.lease_seconds:g}), got {config.heartbeat_seconds:g}",
        )
    for attr in ("market_deadline_seconds", "offer_wait_seconds"):
        if getattr(config, attr) <= 0:
            raise bad(attr, f"must be positive, got {getattr(config, attr):g}")
    if config.trust_after < 1:
        raise bad("trust_after", f"expected at least 1, got {config.trust_after}")
    if not 0 <= config.spot_check <= 1:
        raise bad("spot_check", f"expected a fraction 0..1, got {config.spot_check:g}")
    try:
        config.bridge_site()
    except DocumentError as exc:
        raise bad("domain", str(exc)) from None
    for domain in config.ap_blocked_domains:
        try:
            parse_domain_block(domain)
        except DomainError as exc:
            raise bad("ap_blocked_domains", str(exc)) from None
    if config.ap_first_knock not in ("rfc9421", "cavage"):
        raise bad(
            "ap_first_knock", f"expected 'rfc9421' or 'cavage', got {config.ap_first_knock!r}"
        )
    if not 1024 <= config.ap_max_inbox_bytes <= 64 << 20:
        raise bad("ap_max_inbox_bytes", f"expected 1024..67108864, got {config.ap_max_inbox_bytes}")
    if not 1 <= config.ap_delivery_concurrency <= 1024:
        raise bad(
            "ap_delivery_concurrency", f"expected 1..1024, got {config.ap_delivery_concurrency}"
        )
    if not 1 <= config.ap_delivery_per_host <= 64:
        raise bad("ap_delivery_per_host", f"expected 1..64, got {config.ap_delivery_per_host}")
    _check_pinning(config, bad)
    return config


def _check_pinning(config: Config, bad: Callable[[str, str], ConfigError]) -> None:
    for did in config.pin_follow_creators:
        if not did.startswith("did:key:z"):
            raise bad("pin_follow_creators", f"expected did:key identifiers, got {did!r}")
    for attr in ("pin_popular_count", "pin_quota_bytes", "gateway_requests_per_minute"):
        if getattr(config, attr) < 0:
            raise bad(attr, f"must not be negative, got {getattr(config, attr)}")
    if config.pin_popular_half_life_hours <= 0:
        raise bad("pin_popular_half_life_hours", "must be positive")
    for attr in ("pin_policy_interval_seconds", "pin_fetch_timeout_seconds"):
        if getattr(config, attr) <= 0:
            raise bad(attr, f"must be positive, got {getattr(config, attr):g}")
    for attr in ("gc_interval_seconds", "gc_grace_seconds"):
        if getattr(config, attr) < 0:
            raise bad(attr, f"must not be negative, got {getattr(config, attr):g}")
    if not 0 <= config.pin_max_concurrent_per_token <= config.pin_max_concurrent:
        raise bad(
            "pin_max_concurrent_per_token",
            f"expected 0 (half of max_concurrent) up to max_concurrent "
            f"({config.pin_max_concurrent}), got {config.pin_max_concurrent_per_token}",
        )
    if not 1 <= config.pin_max_name_chars <= 255:
        raise bad(
            "pin_max_name_chars",
            f"expected 1..255 (the spec's limit), got {config.pin_max_name_chars}",
        )
    if not 0 <= config.pin_requests_per_minute <= 1_000_000:
        raise bad(
            "pin_requests_per_minute",
            f"expected 0..1000000, got {config.pin_requests_per_minute}",
        )
    for attr, top in (
        ("pin_max_pending_per_token", 1_000_000),
        ("pin_max_meta_bytes", 1 << 20),
        ("pin_burst", 1_000_000),
        ("pin_max_concurrent", 64),
        ("gateway_max_concurrent_fetches", 256),
        ("gateway_burst", 1_000_000),
        ("gateway_fetch_blocks_per_minute", 10_000_000),
    ):
        if not 1 <= getattr(config, attr) <= top:
            raise bad(attr, f"expected 1..{top}, got {getattr(config, attr)}")


def load_config(
    home: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Defaults, then ``config.toml`` in ``home``, then ``ARTDAG_*`` variables, then overrides."""
    env = os.environ if environ is None else environ
    home_path = Path(home or env.get("ARTDAG_HOME") or Path.home() / ".artdag").expanduser()
    values: dict[str, Any] = {"home": home_path}
    where: dict[str, str] = {}
    path = home_path / "config.toml"
    if path.exists():
        try:
            document = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except RecursionError:  # tomllib recurses once per nested array or inline table
            raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
        except ValueError as exc:  # an integer over Python's 4300-digit conversion limit
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        for section, table in document.items():
            keys = _SECTIONS.get(section)
            if keys is None or not isinstance(table, dict):
                raise ConfigError(f"{path}: unknown section [{section}]")
            for key, value in table.items():
                if key not in keys:
                    raise ConfigError(f"{path}: unknown key {key!r} in [{section}]")
                attr = keys[key]
                where[attr] = f"{path} [{section}] {key}"
                values[attr] = _coerce(attr, value, where[attr])
    for variable, attr in ENVIRONMENT.items():
        if variable in env and env[variable] != "":
            where[attr] = variable
            values[attr] = _coerce(attr, env[variable], variable)
    for attr, value in overrides.items():
        if value is not None:
            where[attr] = f"--{attr.replace('_', '-')}"
            values[attr] = _coerce(attr, value, where[attr]) if attr != "home" else Path(value)
    return _check(replace(Config(), **values), where)
