"""Configuration: ``$ARTDAG_HOME/config.toml`` with environment overrides, as one typed,
frozen section per ``[section]`` (``config.http.port``, ``config.pinning.quota_bytes``).

Precedence, lowest first: built-in defaults, the TOML file, ``ARTDAG_*`` environment variables,
command-line flags. Every bad value is reported with the key or variable that holds it.
"""

from daemon.config.config import Config, Section, default_home
from daemon.config.loading import ENVIRONMENT, FLAGS, load_config
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

__all__ = [
    "ENVIRONMENT",
    "FLAGS",
    "ActivityPubConfig",
    "AnchorConfig",
    "Config",
    "ConfigError",
    "GatewayConfig",
    "HttpConfig",
    "ImportConfig",
    "MarketConfig",
    "MetricsConfig",
    "NodeConfig",
    "P2pConfig",
    "PinningConfig",
    "Section",
    "StoreConfig",
    "VolunteerConfig",
    "default_home",
    "load_config",
]
