"""Slack ("slack").

Source: Slack docs, "Verifying requests from Slack"
(api.slack.com/authentication/verifying-requests-from-slack), whose worked example
tests/test_signing.py reproduces, and slackapi/python-slack-sdk
(slack_sdk/signature/__init__.py, SignatureVerifier).

- ``X-Slack-Request-Timestamp``: integer unix seconds.
- ``X-Slack-Signature: v0=<hex>``: the lower-case hex HMAC-SHA256 of
  ``v0:{timestamp}:{body}`` over the raw body, keyed by the app's signing secret
  (its UTF-8 bytes).
- Tolerance: five minutes, refused in both directions, as Slack's SDK does.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from hooklab.signing._checks import (
    check_window,
    first_match,
    hex_digest,
    mismatch,
    parse_unix_seconds,
    require,
    text_key,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import MalformedHeader

__all__ = ["SCHEME", "Slack"]

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
VERSION = "v0"
_SHAPE = "'v0=' then the lower-case hex HMAC-SHA256 of 'v0:{timestamp}:{body}'"


class Slack:
    """Sign and verify requests the way Slack signs its HTTP requests to apps."""

    name = "slack"
    default_tolerance = 300.0

    def decode_secret(self, secret: str) -> bytes:
        """Return the signing secret's UTF-8 bytes."""
        return text_key(secret, self.name)

    def sign(
        self,
        key: bytes,
        body: bytes,
        *,
        timestamp: int,
        msg_id: str | None,
        url: str | None,
    ) -> dict[str, str]:
        """Return the timestamp and v0 signature headers."""
        digest = hmac.digest(key, _basestring(str(timestamp), body), "sha256")

        return {
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"{VERSION}={digest.hex()}",
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
        """Check the timestamp window, then the v0 signature."""
        raw_timestamp = require(headers, TIMESTAMP_HEADER, "integer unix seconds")
        given = _digest(require(headers, SIGNATURE_HEADER, _SHAPE))

        timestamp = parse_unix_seconds(TIMESTAMP_HEADER, raw_timestamp)
        check_window(TIMESTAMP_HEADER, timestamp, now, tolerance)

        signed = _basestring(raw_timestamp, body)
        index = first_match(keys, signed, [given], "sha256")
        if index is None:
            raise mismatch(SIGNATURE_HEADER, "v0 signature", keys)
        return Verified(self.name, timestamp, index)


SCHEME = Slack()


def _basestring(timestamp: str, body: bytes) -> bytes:
    return f"{VERSION}:{timestamp}:".encode() + body


def _digest(value: str) -> bytes:
    version, sep, text = value.partition("=")
    digest = hex_digest(text, 32) if sep and version == VERSION else None
    if digest is None:
        raise MalformedHeader(
            SIGNATURE_HEADER,
            f"The {SIGNATURE_HEADER} header does not hold {_SHAPE}.",
        )
    return digest
