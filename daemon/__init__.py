"""The composition root: configuration, the node's lifetime, the CLI and the local JSON API.

Nothing imports this package; it imports all the others.
"""

from daemon.config import Config, ConfigError, load_config
from daemon.core.node import Node, open_node

__all__ = ["Config", "ConfigError", "Node", "load_config", "open_node"]
