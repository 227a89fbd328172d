"""Unwrapping trio's exception groups for callers that expect one plain error."""

from __future__ import annotations

import trio


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The exception that caused a nursery to fail, ignoring the knock-on channel breakages."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    knock_on = (trio.BrokenResourceError, trio.ClosedResourceError, trio.Cancelled)
    primary = [e for e in leaves if not isinstance(e, knock_on)]
    return (primary or leaves)[0]
