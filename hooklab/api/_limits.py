"""When to retry, how long to wait, and how fast to go.

``RetryPolicy`` says which failures are retried and how long to back off;
``retry_after_s`` reads a Retry-After header in both its forms; ``header_pause_s``
reads the rate-limit headers providers send on successful answers; ``TokenBucket``
spaces requests on the client's side before the provider has to refuse any.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from hooklab.errors import ConfigError

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "SHOPIFY_LEAK_PER_S",
    "RetryPolicy",
    "TokenBucket",
    "header_pause_s",
    "retry_after_s",
]

#: Methods RFC 9110 (section 9.2.2) defines as idempotent: repeating them is safe.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

#: Answers worth another try: too many requests, and the server-side failures.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: Requests a second Shopify's REST Admin bucket drains on the Standard plan (40
#: requests deep), per shopify.dev/docs/api/admin-rest/usage/rate-limits. Faster
#: plans drain 4 or 20 a second; the header does not say which plan, so the client
#: assumes the slowest, which only ever waits longer than needed.
SHOPIFY_LEAK_PER_S = 2.0

# A reset value this large is a unix time (GitHub's X-RateLimit-Reset); smaller
# values are seconds from now (the IETF RateLimit-Reset draft and most others).
_EPOCH_THRESHOLD = 1_000_000_000


@dataclass(frozen=True)
class RetryPolicy:
    """Which failed attempts are tried again, how often, and how long to wait.

    Attempt ``n`` (from 1) that fails waits a random time between 0 and
    ``min(cap_s, base_s * 2 ** (n - 1))`` ("full jitter", as described in the AWS
    Architecture Blog post "Exponential Backoff And Jitter", 2015), unless the
    provider said how long to wait. No wait is ever longer than ``max_wait_s``.
    ``RetryPolicy(max_attempts=1)`` turns retries off.
    """

    max_attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 30.0
    max_wait_s: float = 120.0
    statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ConfigError(
                "A retry policy needs max_attempts >= 1 and 0 <= base_s <= cap_s; "
                f"got {self.max_attempts}, {self.base_s} and {self.cap_s}."
            )
        if self.max_wait_s <= 0:
            raise ConfigError(f"max_wait_s must be above 0; got {self.max_wait_s}.")

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt``, with full jitter."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)

    def retries(self, method: str, headers: Mapping[str, str]) -> bool:
        """Whether a request may be sent twice: idempotent, or carrying a key."""
        keyed = any(name.lower() == "idempotency-key" for name in headers)
        return method.upper() in IDEMPOTENT_METHODS or keyed


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After value asks for, or None if absent or unreadable.

    Both forms of RFC 9110 (section 10.2.3) are read: delay-seconds and an
    HTTP-date (``now`` is the unix time it is compared with). Fractional seconds,
    which Shopify sends ("2.0"), are accepted. A date in the past gives a negative
    number; the caller decides what to do with it.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()

    try:
        seconds = float(text)
    except ValueError:
        return _http_date_in(text, now)
    return seconds if math.isfinite(seconds) else None


def header_pause_s(headers: Mapping[str, str], now: float) -> float | None:
    """How long the provider's rate-limit headers ask the client to hold off.

    Reads ``X-RateLimit-Remaining``/``-Reset`` (and the unprefixed IETF draft
    names): no request left means wait for the reset. Reads Shopify's
    ``X-Shopify-Shop-Api-Call-Limit: used/size``: a full bucket means wait for one
    request to drain. None when the headers ask for nothing.
    """
    lowered = {name.lower(): value for name, value in headers.items()}

    shopify = _shopify_pause(lowered.get("x-shopify-shop-api-call-limit"))
    if shopify is not None:
        return shopify
    return _reset_pause(lowered, now)


class TokenBucket:
    """A client-side limit of ``rate`` requests a second, in bursts of ``burst``.

    ``reserve`` takes a token and says how long to wait before using it; tokens
    may be owed, so concurrent callers queue up in order rather than all at once.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigError(
                f"A token bucket needs rate > 0 and burst >= 1; got {rate} and {burst}."
            )
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst})"

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before sending."""
        with self._lock:
            now = self._clock()
            refill = (now - self._last) * self.rate
            self._tokens = min(float(self.burst), self._tokens + refill)
            self._last = now

            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


def _http_date_in(text: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.timestamp() - now


def _shopify_pause(value: str | None) -> float | None:
    used, _, size = (value or "").partition("/")
    if not (used.strip().isdigit() and size.strip().isdigit()):
        return None

    free = int(size) - int(used)
    return None if free >= 1 else (1 - free) / SHOPIFY_LEAK_PER_S


def _reset_pause(lowered: Mapping[str, str], now: float) -> float | None:
    remaining = _number(lowered, "x-ratelimit-remaining", "ratelimit-remaining")
    reset = _number(lowered, "x-ratelimit-reset", "ratelimit-reset")
    if remaining is None or remaining >= 1 or reset is None:
        return None

    return reset - now if reset > _EPOCH_THRESHOLD else reset


def _number(lowered: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        try:
            value = float(lowered[name])
        except (KeyError, ValueError):
            continue
        if math.isfinite(value):
            return value
    return None
