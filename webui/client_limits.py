"""Per-client request limits for the public gateway: one token bucket per client address.

Pure: every call takes ``now`` (seconds on a monotonic clock), so the limits are tested with
plain numbers and no server. :class:`TokenBucket` is the single-bucket state machine (also the
daemon's cap on blocks fetched for strangers, :mod:`daemon.core.gateway_fetch`);
:class:`ClientLimits`
keeps one bucket per client key, forgetting the least recently seen client once it holds
``max_clients`` of them, so a flood of distinct addresses costs bounded memory. A forgotten
client comes back with a full bucket, which is the worst it can gain. (A library would bring a
dependency for forty lines.)

Which address is "the client" is :func:`client_address`'s decision: the peer address of the
connection, or the first ``X-Forwarded-For`` hop when the operator says a reverse proxy on this
host sets that header. Loopback clients are limited like any other: behind a local proxy every
request comes from 127.0.0.1, so exempting loopback would exempt everyone.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["ClientLimits", "TokenBucket", "client_address"]


@dataclass(slots=True)
class TokenBucket:
    """A token bucket over an explicit clock: ``capacity`` tokens at most, refilled at
    ``rate`` tokens a second. It starts full. Pure: the caller passes ``now`` (seconds on any
    monotonic clock), so tests drive it with plain numbers."""

    capacity: float
    rate: float
    tokens: float = -1.0  # -1: full at the first reading
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"a token bucket needs a capacity of at least 1, got {self.capacity}")
        if self.rate <= 0:
            raise ValueError(f"a token bucket needs a positive rate, got {self.rate}")
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def take(self, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are that many (True), else take none (False)."""
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def wait_time(self, now: float, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens will be there (0: now); what a Retry-After would say."""
        self._refill(now)
        return max(0.0, (n - self.tokens) / self.rate)


class ClientLimits:
    """``rate_per_s`` requests a second per client on average, bursts of up to ``burst``;
    at most ``max_clients`` buckets are kept (least recently seen forgotten first)."""

    def __init__(self, rate_per_s: float, burst: int, max_clients: int = 10_000) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"a client rate limit must be positive, got {rate_per_s}")
        if burst < 1:
            raise ValueError(f"a client burst must be at least 1, got {burst}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be at least 1, got {max_clients}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @classmethod
    def per_minute(
        cls, requests_per_minute: int, burst: int, max_clients: int = 10_000
    ) -> ClientLimits | None:
        """Limits from the config's figures; None when ``requests_per_minute`` is 0
        (unlimited)."""
        if requests_per_minute == 0:
            return None
        if requests_per_minute < 0:
            raise ValueError(f"requests_per_minute must be 0 or more, got {requests_per_minute}")
        return cls(requests_per_minute / 60, burst, max_clients)

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, client: str, now: float) -> float:
        """Count one request of ``client``: 0.0 if it may go ahead, else the seconds until it
        may (the request is not counted then)."""
        bucket = self._buckets.get(client)
        if bucket is None:
            while len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            bucket = self._buckets[client] = TokenBucket(self.burst, self.rate_per_s)
        else:
            self._buckets.move_to_end(client)
        if bucket.take(now):
            return 0.0
        return bucket.wait_time(now)

    def retry_after(self, wait: float) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(wait))


def client_address(
    remote_addr: str | None, forwarded_for: str | None, *, trust_forwarded_for: bool
) -> str:
    """The client a request counts against: the connection's peer address, or, only when
    ``trust_forwarded_for`` (a reverse proxy on this host sets the header), the first
    ``X-Forwarded-For`` hop if it is an IP address. Unknown peers share the key ``unknown``."""
    if trust_forwarded_for and forwarded_for:
        first = forwarded_for.split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            pass  # not an address: fall back to the connection's peer
    return remote_addr or "unknown"
