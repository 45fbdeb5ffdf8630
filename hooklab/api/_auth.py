"""Credentials for a provider's API: API keys, bearer tokens and OAuth 2.0.

``ApiKey`` and ``BearerToken`` are fixed; ``OAuth2`` obtains an access token from
the provider's token endpoint (the client credentials grant, or the refresh token
grant when it is given a refresh token), refreshes it before it expires and, when
the client reports a 401, once more. One refresh runs at a time however many
requests wait on it, because many providers issue single-use refresh tokens: two
refreshes in parallel would spend the token twice and lose the session.

No credential ever appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hooklab.errors import ConfigError

__all__ = ["ApiKey", "Auth", "BearerToken", "Credentials", "OAuth2"]

logger = logging.getLogger(__name__)

#: Sends a token request (form fields) and returns the decoded JSON answer, which
#: it has checked holds a non-empty ``access_token`` string.
TokenSender = Callable[[Mapping[str, str]], Mapping[str, Any]]
AsyncTokenSender = Callable[[Mapping[str, str]], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Credentials:
    """What one request carries: extra headers and extra query parameters."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


class ApiKey:
    """A fixed API key sent in a header (default ``X-Api-Key``) or a query parameter.

    ``query="api_key"`` sends it as ``?api_key=...`` instead of a header; ``prefix``
    is put before it in the header (some providers want ``Token <key>``).
    """

    def __init__(
        self,
        key: str,
        *,
        header: str = "X-Api-Key",
        query: str | None = None,
        prefix: str = "",
    ) -> None:
        if not key:
            raise ConfigError("An API key is empty; check the variable that holds it.")
        self._key = key
        self.header = header
        self.query = query
        self.prefix = prefix

    def __repr__(self) -> str:
        where = f"query={self.query!r}" if self.query else f"header={self.header!r}"
        return f"ApiKey(<hidden>, {where})"

    def credentials(self) -> Credentials:
        """The header or query parameter that carries the key."""
        if self.query:
            return Credentials(params={self.query: self._key})
        return Credentials(headers={self.header: f"{self.prefix}{self._key}"})


class BearerToken:
    """A fixed bearer token, sent as ``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ConfigError(
                "A bearer token is empty; check the variable that holds it."
            )
        self._token = token

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"

    def credentials(self) -> Credentials:
        """The Authorization header."""
        return Credentials(headers={"Authorization": f"Bearer {self._token}"})


class OAuth2:
    """OAuth 2.0 access tokens from ``token_url``, refreshed before they expire.

    With ``refresh_token`` the refresh token grant is used (RFC 6749 section 6) and
    each new refresh token the provider returns replaces the old one; without it,
    the client credentials grant (section 4.4). The client authenticates with HTTP
    Basic (section 2.3.1). A token is refreshed ``early_s`` before it expires, or at
    half its lifetime when that is shorter.

    One instance serves either threads or one event loop, not both at once.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        refresh_token: str | None = None,
        scope: str | None = None,
        early_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise ConfigError(
                "OAuth2 needs a client id and a client secret; one of them is empty."
            )
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.scope = scope
        self.early_s = early_s
        self._clock = clock
        self._access: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()
        # One asyncio.Lock binds to the first event loop that waits on it; an
        # instance shared by two loops (two asyncio.run calls racing) would fail
        # there. Not supported: build one OAuth2 per client.
        self._async_lock = asyncio.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:
        return (
            f"OAuth2(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"grant={self.grant!r}, refreshes={self.refreshes})"
        )

    @property
    def grant(self) -> str:
        """The grant the next token request uses."""
        return "refresh_token" if self._refresh_token else "client_credentials"

    @property
    def basic_auth(self) -> tuple[str, str]:
        """The client id and secret for HTTP Basic on the token request."""
        return (self.client_id, self._client_secret)

    def token(self, send: TokenSender, *, stale: str | None = None) -> str:
        """A usable access token, fetched through ``send`` if needed.

        ``stale`` is a token the API just refused: it is replaced unless another
        thread already did so while this one waited for the lock.
        """
        with self._lock:
            if self._usable(stale):
                return str(self._access)
            self._store(send(self._form()))
            return str(self._access)

    async def atoken(self, send: AsyncTokenSender, *, stale: str | None = None) -> str:
        """The same as ``token``, for one event loop: one refresh in flight."""
        async with self._async_lock:
            if self._usable(stale):
                return str(self._access)
            self._store(await send(self._form()))
            return str(self._access)

    @staticmethod
    def credentials_for(token: str) -> Credentials:
        """The Authorization header that carries ``token``."""
        return Credentials(headers={"Authorization": f"Bearer {token}"})

    def _usable(self, stale: str | None) -> bool:
        if self._access is None or self._access == stale:
            return False
        return self._clock() < self._renew_at

    def _form(self) -> dict[str, str]:
        if self._refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
        else:
            form = {"grant_type": "client_credentials"}

        if self.scope:
            form["scope"] = self.scope
        return form

    def _store(self, answer: Mapping[str, Any]) -> None:
        """Keep the new access token (and the rotated refresh token, if any).

        The sender has checked that ``access_token`` is a non-empty string.
        """
        lifetime = answer.get("expires_in")

        self._access = str(answer["access_token"])
        self._renew_at = self._clock() + _renew_after(lifetime, self.early_s)
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        self.refreshes += 1
        logger.info("api.token", extra={"grant": self.grant, "expires_in": lifetime})


def _renew_after(lifetime: object, early_s: float) -> float:
    """Seconds from now to renew a token that lives ``lifetime`` seconds."""
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
        # No expires_in: the token is used until the API refuses it with a 401.
        return float("inf")
    return max(float(lifetime) - early_s, float(lifetime) / 2)


#: Anything the client can authenticate with.
Auth = ApiKey | BearerToken | OAuth2
