"""The life of ONE outgoing delivery: its states, the events that move it, and when to retry.

Everything that decides what happens to a delivery lives here; nothing here touches a socket, a
database or the clock (``now`` is always passed in), in the manner of h11's ``_state.py``.
``delivery_queue`` stores the state this module computes; ``delivery_worker`` does the I/O.

Theory of operation. A delivery (one activity to one inbox) is ``queued`` when enqueued. The
worker ``claim``\\ s it (``in-flight``) and POSTs it. The HTTP result becomes an
:class:`Outcome`, which :func:`classify` turns into an event:

- 2xx: ``success`` -> ``delivered`` (final).
- 408, 429, 5xx other than 501, 3xx, and no response at all (timeout, refused connection, TLS
  error): ``temporary-failure`` -> ``retry-wait`` until ``next_at``, then claimable again.
- 4xx other than 401/408/429, and 501: ``permanent-failure`` -> ``dead`` at once (the receiver
  has told us it will never accept it; Mastodon's delivery worker draws the same line).
- 401 once: temporary. The receiver may hold a stale copy of our key (key rotation) and re-fetch
  it; a second 401 in a row is permanent.
- a delivery still not delivered ``max_age`` (two days) after it was created: ``expire`` ->
  ``dead`` (the dead letter).

``recover`` puts a delivery left ``in-flight`` by a crash back to ``queued``.

The retry delay after the n-th failed attempt is ``first_delay * factor**(n-1)``, capped at
``max_delay``, times a jitter factor drawn from ``[1 - jitter, 1]``: bounded, never above the
cap, and (for ``jitter < 1 - 1/factor``) still strictly growing from one attempt to the next.
A ``Retry-After`` from the receiver is a floor under that delay. The last retry is scheduled no
later than the deadline, so one final attempt happens at two days; a ``Retry-After`` reaching
past the deadline kills the delivery at once (it could never be honoured).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = [
    "CLAIMABLE_STATES",
    "TRANSITIONS",
    "Decision",
    "DeliveryError",
    "DeliveryEvent",
    "DeliveryState",
    "DeliveryStateError",
    "Outcome",
    "RetryPolicy",
    "classify",
    "decide",
    "parse_retry_after",
    "transition",
]


class DeliveryError(Exception):
    """Any error of the delivery queue (bad inbox URL, unknown delivery, illegal transition)."""


class DeliveryStateError(DeliveryError):
    """An event that the delivery's current state does not accept."""


class DeliveryState(enum.StrEnum):
    QUEUED = "queued"
    IN_FLIGHT = "in-flight"
    DELIVERED = "delivered"
    RETRY_WAIT = "retry-wait"
    DEAD = "dead"


class DeliveryEvent(enum.StrEnum):
    CLAIM = "claim"
    SUCCESS = "success"
    TEMPORARY_FAILURE = "temporary-failure"
    PERMANENT_FAILURE = "permanent-failure"
    EXPIRE = "expire"
    RECOVER = "recover"


_S = DeliveryState
_E = DeliveryEvent

#: The whole state machine: (state, event) -> next state. Anything absent is illegal.
TRANSITIONS: dict[tuple[DeliveryState, DeliveryEvent], DeliveryState] = {
    (_S.QUEUED, _E.CLAIM): _S.IN_FLIGHT,
    (_S.RETRY_WAIT, _E.CLAIM): _S.IN_FLIGHT,
    (_S.IN_FLIGHT, _E.SUCCESS): _S.DELIVERED,
    (_S.IN_FLIGHT, _E.TEMPORARY_FAILURE): _S.RETRY_WAIT,
    (_S.IN_FLIGHT, _E.PERMANENT_FAILURE): _S.DEAD,
    (_S.IN_FLIGHT, _E.EXPIRE): _S.DEAD,
    (_S.IN_FLIGHT, _E.RECOVER): _S.QUEUED,
    (_S.QUEUED, _E.EXPIRE): _S.DEAD,
    (_S.RETRY_WAIT, _E.EXPIRE): _S.DEAD,
}


def _accepting(event: DeliveryEvent) -> frozenset[DeliveryState]:
    return frozenset(state for (state, ev) in TRANSITIONS if ev is event)


#: States from which a delivery may be claimed (and may expire while waiting).
CLAIMABLE_STATES: frozenset[DeliveryState] = _accepting(DeliveryEvent.CLAIM)


def transition(state: DeliveryState, event: DeliveryEvent) -> DeliveryState:
    """The state after ``event``; :class:`DeliveryStateError` if ``state`` does not accept it."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise DeliveryStateError(f"delivery in state {state!s} cannot take {event!s}") from None


@dataclass(frozen=True)
class Outcome:
    """What one POST to an inbox gave: an HTTP status, or ``None`` when no response came."""

    status: int | None
    retry_after: float | None = None  # seconds to wait, from the Retry-After header
    error: str = ""
    refused: bool = False  # refused before sending (blocked domain, forbidden address)

    @classmethod
    def from_http(cls, status: int, retry_after: str | None = None, *, now: float) -> Outcome:
        """From a response: its status and its raw ``Retry-After`` header (if any)."""
        delay = None if retry_after is None else parse_retry_after(retry_after, now)
        return cls(status, delay, "" if 200 <= status < 300 else f"HTTP {status}")

    @classmethod
    def transport_error(cls, message: str) -> Outcome:
        """No response: timeout, refused connection, reset, TLS failure."""
        return cls(None, None, message)

    @classmethod
    def refused_locally(cls, message: str) -> Outcome:
        """Not sent, and never will be: the inbox's domain is blocked or its address is not
        one the bridge may connect to. A permanent failure (dead letter at once)."""
        return cls(None, None, message, refused=True)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date); None if bad."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify(outcome: Outcome, previous_status: int | None) -> DeliveryEvent:
    """The event an outcome is; ``previous_status`` is the status of the attempt before it."""
    status = outcome.status
    if outcome.refused:
        return DeliveryEvent.PERMANENT_FAILURE
    if status is None:
        return DeliveryEvent.TEMPORARY_FAILURE
    if 200 <= status < 300:
        return DeliveryEvent.SUCCESS
    if status == 401:
        return (
            DeliveryEvent.PERMANENT_FAILURE
            if previous_status == 401
            else DeliveryEvent.TEMPORARY_FAILURE
        )
    if status == 501 or (400 <= status < 500 and status not in (408, 429)):
        return DeliveryEvent.PERMANENT_FAILURE
    return DeliveryEvent.TEMPORARY_FAILURE


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with bounded jitter, inside a total window of ``max_age`` seconds."""

    first_delay: float = 30.0
    factor: float = 2.0
    max_delay: float = 6 * 3600.0
    jitter: float = 0.25  # the delay is scaled by a factor drawn from [1 - jitter, 1]
    max_age: float = 2 * 86400.0

    def __post_init__(self) -> None:
        if not (self.first_delay > 0 and self.factor >= 1 and self.max_delay >= self.first_delay):
            raise DeliveryError(f"retry policy: bad delays {self}")
        if not 0 <= self.jitter < 1 or self.max_age <= 0:
            raise DeliveryError(f"retry policy: bad jitter or max_age {self}")

    def nominal_delay(self, attempts: int) -> float:
        """The delay after ``attempts`` failed attempts, before jitter."""
        exponent = max(0, attempts - 1)
        # The cap is long reached by then; this keeps factor**exponent from overflowing.
        if exponent > 64:
            return self.max_delay
        return min(self.max_delay, self.first_delay * self.factor**exponent)

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """The jittered delay after ``attempts`` failed attempts: in [(1-jitter)*d, d]."""
        return self.nominal_delay(attempts) * rng.uniform(1.0 - self.jitter, 1.0)

    def deadline(self, created: float) -> float:
        return created + self.max_age


@dataclass(frozen=True)
class Decision:
    """What to do with a delivery after one attempt."""

    event: DeliveryEvent
    state: DeliveryState
    next_at: float | None  # when to try again; None unless state is retry-wait
    error: str


def decide(
    policy: RetryPolicy,
    outcome: Outcome,
    *,
    attempts: int,
    created: float,
    now: float,
    previous_status: int | None,
    rng: random.Random,
) -> Decision:
    """The decision after the ``attempts``-th attempt of a delivery created at ``created``."""
    event = classify(outcome, previous_status)
    error = outcome.error
    next_at: float | None = None
    if event is DeliveryEvent.TEMPORARY_FAILURE:
        deadline = policy.deadline(created)
        delay = policy.backoff(attempts, rng)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        if now >= deadline or (
            outcome.retry_after is not None and now + outcome.retry_after > deadline
        ):
            event = DeliveryEvent.EXPIRE
            error = f"gave up after {attempts} attempts: {error}".rstrip(": ")
        else:
            next_at = min(now + delay, deadline)
    state = transition(DeliveryState.IN_FLIGHT, event)
    return Decision(event, state, next_at, error)
