"""Revenue splits: who gets how much of a work's money, in exact integer minor units.

A :class:`Split` shares a work's revenue between *roles* in basis points (1/100 of a percent,
summing to exactly 10000). A :class:`Work` names, per role, the shares that role is paid to: a
payee (a did or any payee id string) or another :class:`Work`, a derived input that passes its
share down by its own split, recursively. Within a role the amount is divided equally between
its shares, or by weight when a share is wrapped in :class:`Weighted`; a payee listed twice in
one role counts twice.

Rules (each tested in ``tests/provenance/test_splits.py``):

- **Exact.** Every division gives each part its floor, then hands the leftover minor units one
  each to the parts with the largest remainders, ties broken by the part's key in sort order
  (role name, payee id, work id). So payouts always sum to the amount, whatever the graph,
  and the same input always gives the same payouts.
- **Nobody to pay.** A role with no shares (none listed, e.g. a ``creator`` role, or none
  known) is paid to the work's ``claimant``. A work without a claimant drops its unpayable
  roles and divides its amount between the payable roles in proportion to their basis
  points. A work with neither a claimant nor any payable role raises :class:`SplitError`.
- **Shared inputs.** Works are settled in topological order: the money reaching a work from
  all its parents is added up first and divided once, so a work reached by many paths (a
  diamond) is not visited once per path and its rounding happens once.
- **Cycles and depth.** A work reachable from itself, or a chain deeper than
  :data:`MAX_DEPTH`, raises :class:`SplitError` naming the work.
- Payees paid nothing (0 minor units) are left out of the result.

:func:`ninety_ten` implements the 9ten policy (per-listener subscriptions: 10% to the node
operators, 90% to that listener's top nine artists pro rata to listens).

Pure: no I/O, no floats. Hand-written because the arithmetic is the contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Union

from .errors import ProvenanceError

__all__ = [
    "BASIS_POINTS",
    "DEFAULT_SPLIT",
    "MAX_DEPTH",
    "Split",
    "SplitError",
    "Weighted",
    "Work",
    "Share",
    "allocate",
    "distribute",
    "distribute_pool",
    "ninety_ten",
]

BASIS_POINTS = 10_000
MAX_DEPTH = 256  # derived-work chains deeper than this are refused as absurd
NINETY_TEN_ARTISTS = 9
_ROLE = re.compile(r"[a-z][a-z0-9-]*")


class SplitError(ProvenanceError, ValueError):
    """A split does not add up, a work graph has a cycle, or there is nobody to pay."""


# -- exact division -------------------------------------------------------------------------
def allocate(amount: int, weights: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Divide ``amount`` between keys in proportion to their (non-negative integer) weights.

    Largest remainder: each key gets ``amount * weight // total``, then the leftover units go
    one each to the keys with the largest ``amount * weight % total``, ties by key. The result
    sums to ``amount`` exactly. Keys are expected to be distinct.
    """
    if amount < 0:
        raise SplitError(f"cannot divide a negative amount ({amount})")
    total = sum(w for _, w in weights)
    if any(w < 0 for _, w in weights):
        raise SplitError("weights must not be negative")
    if total == 0:
        if amount == 0:
            return {key: 0 for key, _ in weights}
        raise SplitError(f"cannot divide {amount} between parts whose weights are all zero")
    out = {key: amount * w // total for key, w in weights}
    leftover = amount - sum(out.values())
    order = sorted(weights, key=lambda kw: (-(amount * kw[1] % total), kw[0]))
    for key, _ in order[:leftover]:
        out[key] += 1
    return out


# -- splits ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Role -> basis points, summing to exactly 10000."""

    shares: Mapping[str, int]

    def __post_init__(self) -> None:
        shares = dict(self.shares)
        if not shares:
            raise SplitError("a split needs at least one role")
        for role, points in shares.items():
            if not isinstance(role, str) or not _ROLE.fullmatch(role) or len(role) > 64:
                raise SplitError(f"split role {role!r}: use lower-case letters, digits and '-'")
            if isinstance(points, bool) or not isinstance(points, int) or points < 0:
                raise SplitError(f"split role {role!r}: {points!r} is not a whole basis point")
        total = sum(shares.values())
        if total != BASIS_POINTS:
            raise SplitError(
                f"split sums to {_percent(total)}% ({total} basis points), it must be 100%"
            )
        object.__setattr__(self, "shares", dict(sorted(shares.items())))

    @classmethod
    def parse(cls, items: Iterable[str]) -> Split:
        """``["footage=40", "effects=25.5", ...]`` (percentages, up to two decimals)."""
        shares: dict[str, int] = {}
        for item in items:
            role, sep, text = item.partition("=")
            role = role.strip()
            if not sep or not role:
                raise SplitError(f"split {item!r}: write it as ROLE=PERCENT, e.g. footage=40")
            if role in shares:
                raise SplitError(f"split {item!r}: role {role!r} is given twice")
            try:
                value = Decimal(text.strip().removesuffix("%"))
            except InvalidOperation:
                raise SplitError(f"split {item!r}: {text!r} is not a percentage") from None
            points = value * 100
            if not value.is_finite() or points != points.to_integral_value():
                raise SplitError(f"split {item!r}: at most two decimals (0.01% is the unit)")
            if not 0 <= value <= 100:
                raise SplitError(f"split {item!r}: a percentage lies between 0 and 100")
            shares[role] = int(points)
        if not shares:
            raise SplitError("a split needs at least one ROLE=PERCENT")
        return cls(shares)

    @classmethod
    def from_record(cls, value: Mapping[str, int]) -> Split:
        """The split of a ``claim`` record (its ``split`` field)."""
        return cls(dict(value))

    def to_record(self) -> dict[str, int]:
        return dict(self.shares)

    def __str__(self) -> str:
        return " ".join(f"{role}={_percent(p)}" for role, p in self.shares.items())


def _percent(points: int) -> str:
    whole, frac = divmod(points, 100)
    return f"{whole}" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")


DEFAULT_SPLIT = Split({"footage": 4000, "effects": 2500, "recipe": 2000, "infrastructure": 1500})


# -- work graphs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Weighted:
    """A share with an integer weight (an unwrapped share weighs 1)."""

    share: Share
    weight: int

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 0:
            raise SplitError(f"share weight {self.weight!r} is not a non-negative integer")


@dataclass(eq=False)
class Work:
    """A work: its split and, per role, who that role is paid to.

    ``claimant`` is paid the roles nobody else is (see the module docstring). Works are
    identified by ``id``: two works with one id in one graph are taken to be the same work.
    """

    id: str
    split: Split = DEFAULT_SPLIT
    roles: dict[str, list[Share | Weighted]] = field(default_factory=dict)
    claimant: str | None = None

    def __repr__(self) -> str:
        return f"Work({self.id!r})"


Share = Union[str, Work]  # noqa: UP007 (a forward reference; `str | "Work"` is not allowed)


def _shares_of(work: Work, role: str) -> list[tuple[str, Share, int]]:
    """(key, share, weight) of one role, a payee or work listed twice merged into one entry."""
    merged: dict[str, tuple[Share, int]] = {}
    for entry in work.roles.get(role, []):
        share, weight = (entry.share, entry.weight) if isinstance(entry, Weighted) else (entry, 1)
        if isinstance(share, Work):
            key = "work:" + share.id
        elif isinstance(share, str) and share:
            key = "payee:" + share
        else:
            raise SplitError(f"work {work.id}: role {role!r} has a share that is {share!r}")
        old = merged.get(key)
        merged[key] = (share, weight + (old[1] if old else 0))
    return [(key, share, weight) for key, (share, weight) in merged.items() if weight > 0]


def _unknown_roles(work: Work) -> None:
    extra = sorted(set(work.roles) - set(work.split.shares))
    if extra:
        raise SplitError(f"work {work.id}: roles {extra} are not in its split ({work.split})")


def _topological(roots: Iterable[Work]) -> list[Work]:
    """Every work reachable from ``roots``, each before the works it pays (its inputs)."""
    order: list[Work] = []
    done: set[str] = set()
    on_path: list[str] = []

    def visit(work: Work) -> None:
        if work.id in done:
            return
        if work.id in on_path:
            cycle = " -> ".join([*on_path[on_path.index(work.id) :], work.id])
            raise SplitError(f"work graph has a cycle: {cycle}")
        if len(on_path) >= MAX_DEPTH:
            raise SplitError(f"work {work.id} lies deeper than {MAX_DEPTH} derived works")
        _unknown_roles(work)
        on_path.append(work.id)
        for role in work.split.shares:
            for _, share, _ in _shares_of(work, role):
                if isinstance(share, Work):
                    visit(share)
        on_path.pop()
        done.add(work.id)
        order.append(work)

    for root in roots:
        visit(root)
    order.reverse()
    return order


def _settle_one(work: Work, amount: int) -> list[tuple[Share, int]]:
    """What one work pays to its shares (payees and input works) out of ``amount``."""
    payable = {role: _shares_of(work, role) for role in work.split.shares}
    role_points = list(work.split.shares.items())
    if work.claimant is None:
        role_points = [(role, p) for role, p in role_points if payable[role]]
        if not role_points or sum(p for _, p in role_points) == 0:
            if amount == 0:
                return []
            raise SplitError(f"work {work.id} has no claimant and nobody in any of its roles")
    out: list[tuple[Share, int]] = []
    for role, role_amount in allocate(amount, role_points).items():
        shares = payable[role]
        if not shares:
            assert work.claimant is not None
            out.append((work.claimant, role_amount))
            continue
        parts = allocate(role_amount, [(key, weight) for key, _, weight in shares])
        out.extend((share, parts[key]) for key, share, _ in shares)
    return out


def _flow(incoming: Mapping[str, int], roots: Sequence[Work]) -> dict[str, int]:
    """Push amounts into works (by id) down the graph; return what each payee gets."""
    amounts = dict(incoming)
    payouts: dict[str, int] = {}
    for work in _topological(roots):
        amount = amounts.pop(work.id, 0)
        for share, value in _settle_one(work, amount):
            if isinstance(share, Work):
                amounts[share.id] = amounts.get(share.id, 0) + value
            else:
                payouts[share] = payouts.get(share, 0) + value
    return {payee: value for payee, value in sorted(payouts.items()) if value > 0}


def distribute(work: Work, amount: int) -> dict[str, int]:
    """Share ``amount`` (minor units) out over ``work``'s graph; the payouts sum to it."""
    _check_amount(amount, "amount")
    return _flow({work.id: amount}, [work])


def distribute_pool(
    pool: int, usage: Mapping[str, int], works: Mapping[str, Work] | Iterable[Work]
) -> dict[str, int]:
    """Divide ``pool`` between works pro rata to ``usage`` (work id -> count), then each
    work's part down its graph. The payouts sum to ``pool`` exactly."""
    _check_amount(pool, "pool")
    by_id = dict(works) if isinstance(works, Mapping) else {w.id: w for w in works}
    for work_id, count in usage.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SplitError(f"usage of {work_id}: {count!r} is not a non-negative count")
        if count and work_id not in by_id:
            raise SplitError(f"usage names work {work_id} but no work graph was given for it")
    used = sorted((work_id, count) for work_id, count in usage.items() if count > 0)
    if not used:
        if pool == 0:
            return {}
        raise SplitError("no usage in this epoch to divide the pool by")
    incoming = allocate(pool, used)
    return _flow(incoming, [by_id[work_id] for work_id, _ in used])


def _check_amount(amount: int, what: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise SplitError(f"{what} must be a non-negative whole number of minor units")


# -- the 9ten policy ------------------------------------------------------------------------
def ninety_ten(
    pool_per_listener: Mapping[str, int],
    listens: Mapping[str, Mapping[str, int]],
    operators: Sequence[str],
) -> dict[str, int]:
    """The 9ten rule, per listener: 10% of their subscription to the node operators (equally),
    90% to their top nine artists of the month by listens, pro rata to listens.

    Ties for the ninth place go to the artist id first in sort order. A listener who listened
    to nobody pays the whole subscription to the operators (nobody else earned it). The 10/90
    division and every other division use :func:`allocate`, so the payouts sum exactly to
    ``sum(pool_per_listener.values())``.
    """
    ops = sorted(set(operators))
    if not ops:
        raise SplitError("the 9ten policy needs at least one node operator")
    payouts: dict[str, int] = {}

    def pay(parts: Mapping[str, int]) -> None:
        for payee, value in parts.items():
            payouts[payee] = payouts.get(payee, 0) + value

    for listener, subscription in sorted(pool_per_listener.items()):
        _check_amount(subscription, f"subscription of {listener}")
        counts = {a: n for a, n in (listens.get(listener) or {}).items() if n > 0}
        top = sorted(counts.items(), key=lambda an: (-an[1], an[0]))[:NINETY_TEN_ARTISTS]
        if not top:
            pay(allocate(subscription, [(op, 1) for op in ops]))
            continue
        halves = allocate(subscription, [("artists", 9), ("operators", 1)])
        pay(allocate(halves["operators"], [(op, 1) for op in ops]))
        pay(allocate(halves["artists"], top))
    return {payee: value for payee, value in sorted(payouts.items()) if value > 0}
