"""Errors of the renderer's ffmpeg layer: one base class, one subclass per kind of refusal.

Every message is one line that names the problem (the limit broken, the filter or option
refused, the tail of ffmpeg's stderr), so the CLI and the job market can show it as is.
"""

from __future__ import annotations

__all__ = [
    "GraphRefused",
    "InputRefused",
    "RenderError",
    "RenderFailed",
    "RenderTimeout",
    "SandboxUnavailable",
]


class RenderError(Exception):
    """Base of every renderer error; the message is one clear line."""


class InputRefused(RenderError):
    """A media input failed probing or broke a limit (the message names the limit)."""


class GraphRefused(RenderError):
    """A filter, option, codec or muxer is not on the allowlist (the message names it)."""


class RenderFailed(RenderError):
    """ffmpeg exited non-zero (the message carries the tail of its stderr)."""


class RenderTimeout(RenderFailed):
    """ffmpeg was killed by the wall-clock timeout or ran out of CPU time."""


class SandboxUnavailable(RenderError):
    """Isolation is required but cannot be set up on this machine (the message says why)."""
