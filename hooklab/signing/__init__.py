"""Sign and verify webhook deliveries, one module per provider scheme.

``sign`` produces the headers a provider would send; ``verify`` and ``Verifier`` check
a received delivery on its raw body bytes, compare in constant time, accept any of
several secrets (rotation) and raise a ``SignatureError`` subclass that says why a
delivery was refused. Schemes live in a registry (see ``hooklab.signing.base``); more
are added one module each.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from hooklab.errors import ConfigError
from hooklab.signing import standard_webhooks
from hooklab.signing.base import (
    Scheme,
    Verified,
    get_scheme,
    lower_headers,
    register,
    schemes,
)
from hooklab.signing.errors import (
    MalformedHeader,
    MissingHeader,
    SignatureError,
    SignatureMismatch,
    TimestampOutOfTolerance,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MalformedHeader",
    "MissingHeader",
    "Scheme",
    "SignatureError",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "Verified",
    "Verifier",
    "get_scheme",
    "register",
    "schemes",
    "sign",
    "verify",
]

DEFAULT_TOLERANCE_S = 300.0

register(standard_webhooks.SCHEME)


class Verifier:
    """Verify deliveries of one scheme against one or more secrets, decoded once."""

    def __init__(
        self,
        scheme: str,
        secrets: str | Sequence[str],
        tolerance: float = DEFAULT_TOLERANCE_S,
    ) -> None:
        self._scheme = get_scheme(scheme)
        self._keys = tuple(self._scheme.decode_secret(s) for s in _as_list(secrets))
        self.tolerance = _check_tolerance(tolerance)

    @property
    def scheme(self) -> str:
        """The name of the scheme this verifier checks."""
        return self._scheme.name

    def __repr__(self) -> str:
        return (
            f"Verifier(scheme={self.scheme!r}, secrets=<{len(self._keys)} hidden>, "
            f"tolerance={self.tolerance:g})"
        )

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        url: str | None = None,
    ) -> Verified:
        """Return what was verified, or raise the SignatureError that says why not."""
        return self._scheme.verify(
            self._keys,
            lower_headers(headers),
            body,
            url=url,
            now=time.time() if now is None else now,
            tolerance=self.tolerance,
        )


def sign(
    scheme: str,
    secret: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    msg_id: str | None = None,
    url: str | None = None,
) -> dict[str, str]:
    """Return the headers the provider of ``scheme`` would send with ``body``."""
    chosen = get_scheme(scheme)

    return chosen.sign(
        chosen.decode_secret(secret),
        body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        msg_id=msg_id,
        url=url,
    )


def verify(
    scheme: str,
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    url: str | None = None,
    now: float | None = None,
    tolerance: float | None = None,
) -> Verified:
    """Verify one delivery; see ``Verifier`` to check many with the same secrets."""
    window = DEFAULT_TOLERANCE_S if tolerance is None else tolerance
    verifier = Verifier(scheme, secret, tolerance=window)

    return verifier.verify(headers, body, now=now, url=url)


def _as_list(secrets: str | Sequence[str]) -> list[str]:
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    if not listed:
        raise ConfigError("A verifier needs at least one secret; none was given.")
    return listed


def _check_tolerance(tolerance: float) -> float:
    if tolerance < 0:
        raise ConfigError(
            f"The timestamp tolerance must be zero or more seconds, got {tolerance}."
        )
    return float(tolerance)
