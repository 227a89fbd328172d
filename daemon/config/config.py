"""``Config``: the home directory, the files in it, and one typed section per ``[section]`` of
``config.toml`` (see ``daemon.config.sections``). A service takes the section it reads."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from activitypub_bridge.documents import BridgeSite, DocumentError
from daemon.config.sections import (
    ActivityPubConfig,
    AnchorConfig,
    ConfigError,
    GatewayConfig,
    HttpConfig,
    ImportConfig,
    MarketConfig,
    MetricsConfig,
    NodeConfig,
    P2pConfig,
    PinningConfig,
    StoreConfig,
    VolunteerConfig,
)

__all__ = ["Config", "default_home", "Section"]

Section = (
    NodeConfig
    | HttpConfig
    | StoreConfig
    | ImportConfig
    | P2pConfig
    | VolunteerConfig
    | MarketConfig
    | AnchorConfig
    | ActivityPubConfig
    | PinningConfig
    | GatewayConfig
    | MetricsConfig
)


def default_home() -> Path:
    return Path(os.environ.get("ARTDAG_HOME") or Path.home() / ".artdag").expanduser()


@dataclass(frozen=True)
class Config:
    """Every field after ``home`` is one section; its class says the TOML name (``SECTION``:
    the attribute ``imports`` holds ``[import]``, a Python keyword)."""

    home: Path = field(default_factory=default_home)
    node: NodeConfig = field(default_factory=NodeConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    imports: ImportConfig = field(default_factory=ImportConfig)
    p2p: P2pConfig = field(default_factory=P2pConfig)
    volunteer: VolunteerConfig = field(default_factory=VolunteerConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    anchor: AnchorConfig = field(default_factory=AnchorConfig)
    activitypub: ActivityPubConfig = field(default_factory=ActivityPubConfig)
    pinning: PinningConfig = field(default_factory=PinningConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def sections(self) -> dict[str, Section]:
        """``{toml section name: section}`` in the order of the file."""
        found: dict[str, Section] = {}
        for f in fields(self):
            if f.name != "home":
                section = getattr(self, f.name)
                found[section.SECTION] = section
        return found

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
        """The public origin the fediverse sees ([node] ``domain``: a host, or an https URL;
        plain http only on loopback with [activitypub] ``allow_http_loopback``). Raises
        DocumentError if bad."""
        return BridgeSite.parse(
            self.node.domain, allow_http_loopback=self.activitypub.allow_http_loopback
        )

    def check(self, name: Callable[[str, str], str]) -> Config:
        """Every section's own check, then what spans sections; ``name(section, key)`` says
        where a value came from. Returns self, or raises ConfigError."""
        for section_name, section in self.sections().items():
            section.check(partial(name, section_name))
        try:
            self.bridge_site()
        except DocumentError as exc:
            raise ConfigError(f"{name('node', 'domain')}: {exc}") from None
        return self

    def to_toml(self) -> dict[str, dict[str, Any]]:
        return {
            section_name: {f.name: getattr(section, f.name) for f in fields(section)}
            for section_name, section in self.sections().items()
        }
