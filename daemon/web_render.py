"""The recipe page's render function (being written)."""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["web_render"]


def web_render(node: Any, nursery: trio.Nursery) -> Any:
    return None
