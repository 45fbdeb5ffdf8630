"""What stands between a request and the mock provider's resources.

``Limiter`` answers 429 beyond a rate; ``Faults`` injects slow answers, 5xx and
malformed bodies (queued one by one, or at random rates); ``TokenStore`` is the
OAuth 2.0 side: expiring access tokens and single-use refresh tokens.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from hooklab.errors import ConfigError

__all__ = [
    "ApiFaults",
    "Fault",
    "Faults",
    "Limiter",
    "OAuthConfig",
    "RateLimit",
    "TokenError",
    "TokenStore",
    "Verdict",
]

HeaderStyle = Literal["none", "ratelimit", "shopify"]


@dataclass(frozen=True)
class RateLimit:
    """At most ``per_second`` API requests a second, in bursts of ``burst``.

    Beyond it the provider answers 429 with Retry-After in whole seconds.
    ``headers`` adds rate-limit headers to every answer: ``ratelimit`` the
    ``X-RateLimit-Limit/-Remaining/-Reset`` trio, ``shopify`` Shopify's
    ``X-Shopify-Shop-Api-Call-Limit: used/size``; ``none`` only Retry-After on 429.
    """

    per_second: float
    burst: int | None = None
    headers: HeaderStyle = "none"

    def __post_init__(self) -> None:
        if self.per_second <= 0 or (self.burst is not None and self.burst < 1):
            raise ConfigError(
                "A rate limit needs per_second > 0 and burst >= 1; got "
                f"{self.per_second} and {self.burst}."
            )

    @property
    def size(self) -> int:
        """The bucket's depth: ``burst``, or one second's worth of requests."""
        return self.burst or max(1, math.ceil(self.per_second))


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer: allowed or not, and the headers to send either way."""

    allowed: bool
    headers: dict[str, str]


class Limiter:
    """A token bucket over all API requests (one provider account)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.size)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> Verdict:
        """Spend one token if there is one; say so, with the headers to send."""
        with self._lock:
            now = self._clock()
            refill = (now - self._last) * self.limit.per_second
            self._tokens = min(float(self.limit.size), self._tokens + refill)
            self._last = now

            allowed = self._tokens >= 1
            if allowed:
                self._tokens -= 1
            return Verdict(allowed, self._headers(allowed))

    def _headers(self, allowed: bool) -> dict[str, str]:
        """Headers for the answer; called under the lock."""
        wait = math.ceil(max(0.0, 1 - self._tokens) / self.limit.per_second)
        headers = {} if allowed else {"Retry-After": str(max(wait, 1))}
        size, left = self.limit.size, math.floor(self._tokens)

        if self.limit.headers == "ratelimit":
            headers["X-RateLimit-Limit"] = str(size)
            headers["X-RateLimit-Remaining"] = str(left)
            headers["X-RateLimit-Reset"] = str(wait)
        elif self.limit.headers == "shopify":
            headers["X-Shopify-Shop-Api-Call-Limit"] = f"{size - left}/{size}"
        return headers


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour: wait ``delay_s``, then answer as told.

    With ``status`` None the request is served normally after the delay;
    otherwise it is answered ``status`` with ``body`` (a JSON error by default),
    ``content_type`` and ``headers``.
    """

    status: int | None = None
    delay_s: float = 0.0
    body: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiFaults:
    """Random misbehaviour: a share of API requests fail or answer slowly."""

    error_rate: float = 0.0
    error_status: int = 503
    slow_rate: float = 0.0
    slow_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.error_rate <= 1 and 0 <= self.slow_rate <= 1):
            raise ConfigError(
                "error_rate and slow_rate are shares from 0 to 1; got "
                f"{self.error_rate} and {self.slow_rate}."
            )


class Faults:
    """Queued faults (served first, in order) and random ones."""

    def __init__(self, random_faults: ApiFaults | None) -> None:
        self.random = random_faults or ApiFaults()
        self._queue: deque[Fault] = deque()
        self._rng = random.Random(self.random.seed)
        self._lock = threading.Lock()

    def add(self, fault: Fault, count: int) -> None:
        """Serve ``fault`` to the next ``count`` API requests."""
        with self._lock:
            self._queue.extend([fault] * count)

    def next(self) -> Fault | None:
        """The fault for this request, if any."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            failing = self._rng.random() < self.random.error_rate
            slow = self._rng.random() < self.random.slow_rate

        if not (failing or slow):
            return None
        status = self.random.error_status if failing else None
        return Fault(status=status, delay_s=self.random.slow_s if slow else 0.0)


@dataclass(frozen=True)
class OAuthConfig:
    """The provider's OAuth 2.0 client, and how long its access tokens live.

    ``token_delay_s`` slows the token endpoint, which widens the window in which
    concurrent requests could race to refresh.
    """

    client_id: str
    client_secret: str
    token_ttl_s: float = 3600.0
    token_delay_s: float = 0.0

    def __repr__(self) -> str:
        return (
            f"OAuthConfig(client_id={self.client_id!r}, client_secret=<hidden>, "
            f"token_ttl_s={self.token_ttl_s})"
        )


class TokenError(Exception):
    """A token request the endpoint refuses with ``status`` and an OAuth error."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class TokenStore:
    """Issued access tokens (with expiry) and unspent refresh tokens."""

    def __init__(self, config: OAuthConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._lock = threading.Lock()
        self.grants: list[str] = []
        self.spent_refresh_reused = 0

    def check_client(self, client_id: str, client_secret: str) -> None:
        """Refuse a client whose id or secret is wrong (constant time)."""
        same_id = secrets.compare_digest(client_id, self.config.client_id)
        same_secret = secrets.compare_digest(client_secret, self.config.client_secret)
        if not (same_id and same_secret):
            raise TokenError(401, "invalid_client")

    def grant(self, grant_type: str, refresh_token: str | None) -> dict[str, object]:
        """Issue tokens for one grant, spending a refresh token if one is used."""
        with self._lock:
            self.grants.append(grant_type)
            if grant_type == "refresh_token":
                self._spend(refresh_token)
            elif grant_type != "client_credentials":
                raise TokenError(400, "unsupported_grant_type")
            return self._issue(with_refresh=grant_type == "refresh_token")

    def issue_refresh_token(self) -> str:
        """A fresh refresh token, as an authorization-code flow would hand out."""
        token = "rt_" + secrets.token_urlsafe(16)
        with self._lock:
            self._refresh.add(token)
        return token

    def valid(self, access_token: str) -> bool:
        """Whether ``access_token`` was issued and has not expired."""
        with self._lock:
            expires = self._access.get(access_token)
        return expires is not None and self._clock() < expires

    def expire_all(self) -> None:
        """Make every access token issued so far invalid."""
        with self._lock:
            self._access.clear()

    def _spend(self, refresh_token: str | None) -> None:
        if refresh_token not in self._refresh:
            self.spent_refresh_reused += 1
            raise TokenError(400, "invalid_grant")
        self._refresh.discard(refresh_token)

    def _issue(self, *, with_refresh: bool) -> dict[str, object]:
        access = "at_" + secrets.token_urlsafe(16)
        self._access[access] = self._clock() + self.config.token_ttl_s
        answer: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.token_ttl_s,
        }
        if with_refresh:
            refresh = "rt_" + secrets.token_urlsafe(16)
            self._refresh.add(refresh)
            answer["refresh_token"] = refresh
        return answer
