"""The Standard Webhooks signature scheme ("standard-webhooks").

Source: the Standard Webhooks specification, github.com/standard-webhooks/
standard-webhooks, file spec/standard-webhooks.md ("Verifying webhook authenticity").

A delivery carries three headers:

- ``webhook-id``: the message id, stable across retries of the same message;
- ``webhook-timestamp``: integer unix seconds when the attempt was signed;
- ``webhook-signature``: a space-separated list of ``<version>,<base64>`` entries.

The signed content is ``{id}.{timestamp}.{body}`` over the raw body bytes, signed with
HMAC-SHA256. The key is the base64 decoding of the secret's part after ``whsec_``.
Only version ``v1`` (HMAC-SHA256) is checked here; other versions, such as the
asymmetric ``v1a``, are ignored. A timestamp more than the tolerance away from now, in
either direction, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence

from hooklab.errors import ConfigError
from hooklab.signing.base import Verified
from hooklab.signing.errors import (
    MalformedHeader,
    MissingHeader,
    SignatureMismatch,
    TimestampOutOfTolerance,
)

__all__ = ["SCHEME", "StandardWebhooks"]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
VERSION = "v1"


class StandardWebhooks:
    """Sign and verify deliveries the way the Standard Webhooks specification says."""

    name = "standard-webhooks"

    def decode_secret(self, secret: str) -> bytes:
        """Return the key: the base64 decoding of ``secret`` after any ``whsec_``."""
        encoded = secret.removeprefix(SECRET_PREFIX)

        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                "A standard-webhooks secret must be 'whsec_' followed by base64; "
                "the one given does not decode (its value is not shown)."
            ) from None

        if not key:
            raise ConfigError("A standard-webhooks secret must not be empty.")
        return key

    def sign(
        self,
        key: bytes,
        body: bytes,
        *,
        timestamp: int,
        msg_id: str | None,
        url: str | None,
    ) -> dict[str, str]:
        """Return webhook-id, webhook-timestamp and a one-entry webhook-signature."""
        msg_id = msg_id or f"msg_{secrets.token_urlsafe(18)}"

        digest = _digest(key, msg_id, str(timestamp), body)

        return {
            ID_HEADER: msg_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"{VERSION},{base64.b64encode(digest).decode()}",
        }

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
        """Check the lower-cased ``headers`` of one delivery against ``keys``."""
        msg_id = _require(headers, ID_HEADER)
        raw_timestamp = _require(headers, TIMESTAMP_HEADER)
        candidates = _v1_signatures(_require(headers, SIGNATURE_HEADER))

        timestamp = _parse_timestamp(raw_timestamp)
        _check_window(timestamp, now, tolerance)

        for index, key in enumerate(keys):
            expected = _digest(key, msg_id, raw_timestamp, body)
            if any(hmac.compare_digest(expected, given) for given in candidates):
                return Verified(self.name, timestamp, index, event_id=msg_id)

        raise SignatureMismatch(
            SIGNATURE_HEADER,
            f"No v1 signature in the {SIGNATURE_HEADER} header matches the body "
            f"under any of the {len(keys)} configured secret(s).",
        )


SCHEME = StandardWebhooks()


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _require(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None or not value.strip():
        raise MissingHeader(
            name,
            f"The {name} header is missing or empty; a Standard Webhooks delivery "
            f"carries {ID_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}.",
        )
    return value.strip()


def _parse_timestamp(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise MalformedHeader(
            TIMESTAMP_HEADER,
            f"The {TIMESTAMP_HEADER} header must be integer unix seconds, "
            f"got {raw[:40]!r}.",
        )
    return int(raw)


def _check_window(timestamp: int, now: float, tolerance: float) -> None:
    age = now - timestamp
    if abs(age) <= tolerance:
        return

    direction = "old" if age > 0 else "far in the future"
    raise TimestampOutOfTolerance(
        TIMESTAMP_HEADER,
        f"The {TIMESTAMP_HEADER} header is {abs(age):.0f} s {direction}; "
        f"the tolerance is {tolerance:g} s (check the clocks, or a replay).",
    )


def _v1_signatures(header: str) -> list[bytes]:
    """Return the decoded v1 entries; ignore other versions, refuse a bad list."""
    entries = [entry.partition(",") for entry in header.split()]
    if not any(sep for _, sep, _ in entries):
        raise MalformedHeader(
            SIGNATURE_HEADER,
            f"The {SIGNATURE_HEADER} header must be space-separated "
            "'<version>,<base64>' entries; none of its entries has that form.",
        )

    v1_entries = [sig for version, sep, sig in entries if version == VERSION]
    if not v1_entries:
        versions = sorted({version for version, sep, _ in entries if sep})
        raise SignatureMismatch(
            SIGNATURE_HEADER,
            f"The {SIGNATURE_HEADER} header has no {VERSION} (HMAC-SHA256) entry; "
            f"versions present: {', '.join(versions)}.",
        )

    decoded = [sig for sig in map(_b64_or_none, v1_entries) if sig]
    if not decoded:
        raise MalformedHeader(
            SIGNATURE_HEADER,
            f"The {VERSION} entries of the {SIGNATURE_HEADER} header are empty or "
            "not valid base64.",
        )
    return decoded


def _b64_or_none(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
