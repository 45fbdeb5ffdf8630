"""Checks the scheme modules share: headers, timestamps, encodings, keys and matching.

Every refusal raised here names its header and says what was expected. None of them
quotes a secret, an expected signature or the body; a received timestamp may be
quoted, because it is neither secret nor a signature.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hooklab.errors import ConfigError
from hooklab.signing.errors import (
    MalformedHeader,
    MissingHeader,
    SignatureMismatch,
    TimestampOutOfTolerance,
)

__all__ = [
    "b64_digest",
    "check_window",
    "first_match",
    "hex_digest",
    "hmac_digest",
    "mismatch",
    "parse_unix_seconds",
    "require",
    "require_url",
    "text_key",
    "timestamp_within",
]

_HEX = {size: re.compile(f"[0-9a-f]{{{2 * size}}}") for size in (20, 32, 64)}
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


def hmac_digest(key: bytes, digest: str, *parts: bytes) -> bytes:
    """Return the HMAC of the concatenated ``parts``, as ``hmac.digest`` would.

    The hash states primed with the padded key are made once per key and copied for
    each message, which saves a third of the time of ``hmac.digest`` on a 2 KB body
    and spares joining the parts into one new bytes object.
    """
    primed_inner, primed_outer = _primed(key, digest)

    inner = primed_inner.copy()
    for part in parts:
        inner.update(part)

    outer = primed_outer.copy()
    outer.update(inner.digest())
    return outer.digest()  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _primed(key: bytes, digest: str) -> tuple[Any, Any]:
    """Hash states after the inner and outer padded key (RFC 2104, section 2)."""
    inner = hashlib.new(digest)
    if len(key) > inner.block_size:
        key = hashlib.new(digest, key).digest()
    padded = key.ljust(inner.block_size, b"\0")

    inner.update(padded.translate(_INNER_PAD))
    outer = hashlib.new(digest, padded.translate(_OUTER_PAD))
    return inner, outer


def require(headers: Mapping[str, str], name: str, carries: str) -> str:
    """Return the stripped value of header ``name``; refuse it when absent or empty.

    ``headers`` has lower-cased names; ``carries`` says what the header should hold.
    """
    value = headers.get(name.lower())
    if value is None or not value.strip():
        raise MissingHeader(
            name, f"The {name} header is missing or empty; it should carry {carries}."
        )
    return value.strip()


def parse_unix_seconds(name: str, raw: str) -> int:
    """Return the integer unix seconds in ``raw``, or refuse header ``name``."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        # Only a short prefix is quoted, so a signature sharing the header never is.
        shown = repr(raw[:12]) + ("..." if len(raw) > 12 else "")
        raise MalformedHeader(
            name, f"The {name} header must hold integer unix seconds, got {shown}."
        )
    return int(raw)


def check_window(name: str, timestamp: int, now: float, tolerance: float) -> None:
    """Refuse a timestamp more than ``tolerance`` seconds before or after ``now``."""
    age = now - timestamp
    if -tolerance <= age <= tolerance:
        return

    direction = "old" if age > 0 else "in the future"
    raise TimestampOutOfTolerance(
        name,
        f"The {name} header is {abs(age):.0f} s {direction}; the tolerance is "
        f"{tolerance:g} s either way (check the sender's clock, or this is a replay).",
    )


def timestamp_within(name: str, raw: str, now: float, tolerance: float) -> int:
    """Return the unix seconds in header ``name`` once they are inside the window."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        timestamp = int(raw)
        if -tolerance <= now - timestamp <= tolerance:
            return timestamp  # the usual case, checked without further calls

    timestamp = parse_unix_seconds(name, raw)
    check_window(name, timestamp, now, tolerance)
    return timestamp


def hex_digest(text: str, size: int) -> bytes | None:
    """Decode a lower-case hex digest of ``size`` bytes, or return None."""
    pattern = _HEX.get(size) or re.compile(f"[0-9a-f]{{{2 * size}}}")
    if pattern.fullmatch(text) is None:
        return None
    return bytes.fromhex(text)


def b64_digest(text: str, size: int) -> bytes | None:
    """Decode a canonical standard-base64 digest of ``size`` bytes, or return None.

    Canonical means re-encoding gives back ``text``: the reference libraries compare
    the encoded strings, so a variant spelling of the same bytes is refused too.
    """
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None

    if len(decoded) != size or base64.b64encode(decoded).decode() != text:
        return None
    return decoded


def first_match(
    keys: Sequence[bytes],
    signed: bytes,
    candidates: Iterable[bytes],
    digest: str,
) -> int | None:
    """Return the index of the first key whose HMAC of ``signed`` is a candidate.

    Each comparison runs in constant time; ``digest`` names the hash (``sha256``).
    """
    given = tuple(candidates)
    for index, key in enumerate(keys):
        expected = hmac_digest(key, digest, signed)
        for candidate in given:
            if hmac.compare_digest(expected, candidate):
                return index
    return None


def mismatch(name: str, what: str, keys: Sequence[bytes]) -> SignatureMismatch:
    """The refusal for a well-formed ``name`` header whose signature matches no key."""
    return SignatureMismatch(
        name,
        f"No {what} in the {name} header matches the body under any of the "
        f"{len(keys)} configured secret(s).",
    )


def text_key(secret: str, scheme: str) -> bytes:
    """Return ``secret`` as UTF-8 key bytes, the way most providers use theirs."""
    if not secret:
        raise ConfigError(f"A {scheme} secret must not be empty.")
    return secret.encode()


def require_url(url: str | None, scheme: str) -> str:
    """Return ``url``; a scheme that signs the URL cannot work without it."""
    if not url:
        raise ConfigError(
            f"The {scheme} scheme signs the request URL, so it needs that URL "
            "(--url on the command line, url= in Python): the full URL the provider "
            "posted to, exactly as configured with the provider."
        )
    return url
