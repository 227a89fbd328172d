"""CLI commands of the renderer: effects, recipes, render, provenance."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(main: click.Group) -> None:
    """Add the renderer's commands to ``main``."""
