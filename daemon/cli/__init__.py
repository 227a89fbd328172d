"""The ``artdag`` command: click adapters that parse, call the node API and print."""

from daemon.cli.main import main

__all__ = ["main"]
