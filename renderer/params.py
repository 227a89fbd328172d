"""Effect parameters: their declared types and ranges, and the coercion of author values.

A :class:`ParamSpec` is what an effect record says about one parameter (type, range, choices,
default, doc). :func:`coerce_param` turns what a recipe author wrote (YAML or ``--param K=V``
text) into the canonical value stored in records and hashed into cache ids: an ``int`` stays an
``int``, a ``float`` parameter given as ``1`` becomes ``1.0`` (so ``1`` and ``1.0`` hash alike),
a ``cid`` parameter becomes a CID link. Errors are :class:`ParamError` naming what is wrong; the
recipe layer prefixes the node and parameter name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dag import CID, CidError, parse_cid

from .errors import RenderError

__all__ = ["ParamSpec", "ParamError", "coerce_param", "parse_param_text"]

_TYPES = ("int", "float", "bool", "string", "cid")


class ParamError(RenderError, ValueError):
    """A parameter value of the wrong type or out of range."""


@dataclass(frozen=True)
class ParamSpec:
    type: str
    doc: str
    default: Any = None
    min: float | int | None = None
    max: float | int | None = None
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"unknown parameter type {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is None

    def describe(self) -> str:
        """A short human summary: ``float 0..1 (default 0.9)``."""
        text = self.type
        if self.choices:
            text += " one of " + "|".join(self.choices)
        if self.min is not None or self.max is not None:
            text += (
                f" {'' if self.min is None else self.min}..{'' if self.max is None else self.max}"
            )
        text += " (required)" if self.required else f" (default {self.default})"
        return text

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "doc": self.doc}
        if self.default is not None:
            out["default"] = self.default
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> ParamSpec:
        choices = value.get("choices")
        return cls(
            type=value["type"],
            doc=value["doc"],
            default=value.get("default"),
            min=value.get("min"),
            max=value.get("max"),
            choices=tuple(choices) if choices else None,
        )


def parse_param_text(text: str) -> Any:
    """A command-line value: ``true``/``false``, an integer, a float, or the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def coerce_param(spec: ParamSpec, value: Any) -> Any:
    """The canonical value of ``value`` for ``spec``; ParamError if it does not fit."""
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ParamError(f"expected true or false, got {_kind(value)}")
        return value
    if spec.type == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"expected an integer, got {_kind(value)}")
        return _in_range(spec, value)
    if spec.type == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise ParamError(f"expected a finite number, got {value!r}")
        return _in_range(spec, float(value))
    if spec.type == "string":
        if not isinstance(value, str):
            raise ParamError(f"expected a string, got {_kind(value)}")
        if spec.choices and value not in spec.choices:
            raise ParamError(f"expected one of {', '.join(spec.choices)}, got {value!r}")
        return value
    # cid
    if isinstance(value, CID):
        return value
    if not isinstance(value, str):
        raise ParamError(f"expected a CID, got {_kind(value)}")
    try:
        return parse_cid(value)
    except CidError as exc:
        raise ParamError(f"expected a CID: {exc}") from None


def _in_range(spec: ParamSpec, value: int | float) -> int | float:
    low, high = spec.min, spec.max
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{'' if low is None else low}..{'' if high is None else high}"
        raise ParamError(f"{value!r} is out of range {bounds}")
    return value
