"""The contract every signature scheme module fulfils, and the registry of schemes.

A scheme turns a secret string into key bytes once, signs a body into the headers a
provider would send, and verifies received headers against one or more keys. Adding a
scheme means writing one module with one object that satisfies ``Scheme`` and
registering it in ``hooklab/signing/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from hooklab.errors import ConfigError

__all__ = [
    "LowerCaseHeaders",
    "Scheme",
    "Verified",
    "get_scheme",
    "lower_headers",
    "register",
    "resolve",
    "schemes",
]


class Verified(NamedTuple):
    """A delivery that passed verification.

    ``timestamp`` is the signed unix time (None for schemes without one),
    ``secret_index`` the position of the secret that matched, and ``event_id`` the
    delivery id the scheme's headers carry, if they carry one. It is a named tuple
    rather than a frozen dataclass because it is built on every request, and a
    tuple is built in a third of the time.
    """

    scheme: str
    timestamp: int | None
    secret_index: int
    event_id: str | None = None


class Scheme(Protocol):
    """One provider's signing convention.

    ``default_tolerance`` is the provider's own replay window in seconds, or None for
    a scheme whose signature carries no timestamp.
    """

    name: str

    @property
    def default_tolerance(self) -> float | None:
        """The provider's replay window in seconds; None when nothing is timed."""
        ...

    def decode_secret(self, secret: str) -> bytes:
        """Return the HMAC key for ``secret``; raise ConfigError if it is unusable."""
        ...

    def sign(
        self,
        key: bytes,
        body: bytes,
        *,
        timestamp: int,
        msg_id: str | None,
        url: str | None,
    ) -> dict[str, str]:
        """Return the headers a provider would send with ``body``."""
        ...

    def verify(
        self,
        keys: Sequence[bytes],
        headers: Mapping[str, str],
        body: bytes,
        *,
        url: str | None,
        now: float,
        tolerance: float,
    ) -> Verified:
        """Check lower-cased ``headers`` against ``keys``; raise SignatureError."""
        ...


_REGISTRY: dict[str, Scheme] = {}


def register(scheme: Scheme) -> None:
    """Make ``scheme`` available by its name; a name can be registered only once."""
    if scheme.name in _REGISTRY:
        raise ConfigError(f"A signature scheme named {scheme.name!r} already exists.")

    _REGISTRY[scheme.name] = scheme


def get_scheme(name: str) -> Scheme:
    """Return the registered scheme called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(
            f"Unknown signature scheme {name!r}; the known schemes are: {known}."
        ) from None


def resolve(scheme: str | Scheme) -> Scheme:
    """Return ``scheme`` itself, or the registered scheme of that name."""
    return get_scheme(scheme) if isinstance(scheme, str) else scheme


def schemes() -> list[str]:
    """Return the names of the registered schemes, sorted."""
    return sorted(_REGISTRY)


class LowerCaseHeaders(dict[str, str]):
    """Headers whose names are lower-case already, as the receiver builds them
    from what the ASGI server passed; ``lower_headers`` takes them as they are."""


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return ``headers`` with lower-cased names, so lookups ignore case.

    LowerCaseHeaders are returned as they are, not copied: every delivery's
    headers are looked up by the verifier and again by the event-id rules.
    """
    if isinstance(headers, LowerCaseHeaders):
        return headers
    return {name.lower(): value for name, value in headers.items()}
