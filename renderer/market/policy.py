"""A volunteer's capacity policy: which jobs it may take, and when.

A volunteer lends spare capacity to strangers, so its owner says how much: how many jobs at
once and at what CPU share and niceness, during which local hours, only while the machine is
idle, which effects, and how big and long a job's inputs may be. The rules fall in two kinds:

- **static** (``refuse_job``): facts of the job that never change — its effect, the size and
  duration of its inputs. A job refused for these is never taken, whatever the time or load.
- **dynamic** (``refuse_now``): the volunteer's state at this moment — the clock, the load
  average, how many jobs it already runs. A job refused for these may be taken later.

Both return ``None`` when the job is acceptable, else one line a requester can show its user.
Everything here is pure except ``machine_load_per_cpu``, the one function that asks the OS.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from renderer.effects import BUILTIN_EFFECTS

__all__ = [
    "JobFacts",
    "PolicyError",
    "VolunteerPolicy",
    "machine_load_per_cpu",
    "refuse_job",
    "refuse_now",
]

GiB = 1024 * 1024 * 1024
MAX_JOBS = 64
_WINDOW = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")


class PolicyError(ValueError):
    """A bad volunteer policy setting; ``key`` is the setting's name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"volunteer policy {key!r}: {message}")
        self.key = key
        self.detail = message


def _minutes(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


def parse_window(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` as (start, end) minutes after midnight; ``end`` may be 24:00 and may
    be before ``start`` (the window wraps midnight). Raises PolicyError naming ``hours``."""
    match = _WINDOW.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise PolicyError("hours", f"expected windows like '09:00-17:30', got {text!r}")
    h1, m1, h2, m2 = match.groups()
    start, end = _minutes(h1, m1), _minutes(h2, m2)
    if int(h1) > 23 or int(m1) > 59 or int(m2) > 59 or end > 24 * 60:
        raise PolicyError("hours", f"{text!r} is not a time of day")
    if start == end:
        raise PolicyError("hours", f"{text!r} is empty (for any time, leave hours empty)")
    return start, end


def _in_window(window: tuple[int, int], now: time) -> bool:
    start, end = window
    minute = now.hour * 60 + now.minute
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps midnight


@dataclass(frozen=True)
class VolunteerPolicy:
    """How much of this machine a volunteer lends (see the module docstring)."""

    max_jobs: int = 1
    niceness: int = 10
    cpu_share: float = 0.5
    hours: tuple[str, ...] = ()
    idle_load: float = 0.8
    allowed_effects: frozenset[str] | None = None
    max_input_bytes: int = 2 * GiB
    max_input_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_jobs <= MAX_JOBS:
            raise PolicyError("max_jobs", f"expected 1..{MAX_JOBS}, got {self.max_jobs}")
        if not 0 <= self.niceness <= 19:
            raise PolicyError("niceness", f"expected 0..19, got {self.niceness}")
        if not (0 < self.cpu_share <= 1):
            raise PolicyError("cpu_share", f"expected a fraction 0 < x <= 1, got {self.cpu_share}")
        for window in self.hours:
            parse_window(window)
        if not (math.isfinite(self.idle_load) and self.idle_load >= 0):
            raise PolicyError("idle_load", f"expected >= 0 (0 disables), got {self.idle_load}")
        if self.allowed_effects is not None:
            if not self.allowed_effects:
                raise PolicyError(
                    "allowed_effects", "is empty (leave it out to allow every built-in effect)"
                )
            unknown = sorted(self.allowed_effects - BUILTIN_EFFECTS.keys())
            if unknown:
                known = ", ".join(sorted(BUILTIN_EFFECTS))
                raise PolicyError(
                    "allowed_effects", f"unknown effect {unknown[0]!r} (built-in: {known})"
                )
        if self.max_input_bytes <= 0:
            raise PolicyError("max_input_bytes", f"must be positive, got {self.max_input_bytes}")
        if not (math.isfinite(self.max_input_seconds) and self.max_input_seconds > 0):
            raise PolicyError(
                "max_input_seconds", f"must be positive, got {self.max_input_seconds}"
            )

    def concurrency(self, ncpu: int) -> int:
        """How many jobs may run at once on ``ncpu`` CPUs: ``max_jobs``, and no more than
        ``cpu_share`` of the CPUs (one job at least)."""
        return min(self.max_jobs, max(1, math.floor(self.cpu_share * ncpu)))

    def windows(self) -> tuple[tuple[int, int], ...]:
        """``hours`` as (start, end) minutes after midnight."""
        return tuple(parse_window(w) for w in self.hours)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> VolunteerPolicy:
        """Build from a TOML section (or ``to_mapping``'s output). An empty or missing
        ``allowed_effects`` means every built-in effect. Raises PolicyError naming the key."""
        kwargs: dict[str, Any] = {}
        for key, value in m.items():
            coerce = _COERCE.get(key)
            if coerce is None:
                raise PolicyError(key, "unknown setting")
            kwargs[key] = coerce(key, value)
        return cls(**kwargs)

    def to_mapping(self) -> dict[str, Any]:
        """Plain TOML/CBOR values (lists, no None); ``from_mapping`` reads it back."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "allowed_effects":
                value = sorted(value) if value is not None else []
            elif f.name == "hours":
                value = list(value)
            out[f.name] = value
        return out


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(key, f"expected an integer, got {value!r}")
    return value


def _float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(key, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise PolicyError(key, f"expected a finite number, got {value!r}")
    return float(value)


def _names(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError(key, f"expected a list of strings, got {value!r}")
    items = list(value)
    if not all(isinstance(i, str) and i for i in items):
        raise PolicyError(key, f"expected a list of non-empty strings, got {value!r}")
    return tuple(items)


def _effects(key: str, value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    names = _names(key, value)
    return frozenset(names) or None


_COERCE: dict[str, Any] = {
    "max_jobs": _int,
    "niceness": _int,
    "cpu_share": _float,
    "hours": _names,
    "idle_load": _float,
    "allowed_effects": _effects,
    "max_input_bytes": _int,
    "max_input_seconds": _float,
}


@dataclass(frozen=True)
class JobFacts:
    """What a volunteer knows about a job before fetching anything."""

    operation: str  # effect name
    input_bytes: int  # sum of the inputs' sizes
    input_seconds: float  # longest input's duration in seconds, 0 if unknown


def refuse_job(policy: VolunteerPolicy, facts: JobFacts) -> str | None:
    """Why this volunteer will never take the job, or None. Static: depends on the job only."""
    allowed = policy.allowed_effects
    if allowed is not None and facts.operation not in allowed:
        return (
            f"effect {facts.operation!r} is not allowed by this volunteer's policy "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    if allowed is None and facts.operation not in BUILTIN_EFFECTS:
        return f"effect {facts.operation!r} is not a built-in effect this volunteer knows"
    if facts.input_bytes > policy.max_input_bytes:
        return (
            f"inputs of {facts.input_bytes} bytes are over this volunteer's "
            f"max_input_bytes={policy.max_input_bytes}"
        )
    if facts.input_seconds > policy.max_input_seconds:
        return (
            f"an input of {facts.input_seconds:g} s is over this volunteer's "
            f"max_input_seconds={policy.max_input_seconds:g}"
        )
    return None


def refuse_now(
    policy: VolunteerPolicy, *, now: time, load_per_cpu: float, busy: int, ncpu: int
) -> str | None:
    """Why this volunteer will not take a job at this moment, or None. Dynamic: the same job
    may be taken later. ``now`` is local time; ``busy`` the jobs it runs already."""
    windows = policy.windows()
    if windows and not any(_in_window(w, now) for w in windows):
        return (
            f"outside this volunteer's hours ({', '.join(policy.hours)}; "
            f"now {now.strftime('%H:%M')})"
        )
    if policy.idle_load > 0 and load_per_cpu >= policy.idle_load:
        return f"machine not idle (load {load_per_cpu:.2f} per CPU, idle_load={policy.idle_load:g})"
    limit = policy.concurrency(ncpu)
    if busy >= limit:
        return f"at capacity ({busy} of {limit} jobs running)"
    return None


def machine_load_per_cpu() -> float:
    """The 1-minute load average divided by the CPU count (the only call here touching the OS)."""
    return os.getloadavg()[0] / (os.cpu_count() or 1)
