"""Paddle Billing ("paddle").

Source: Paddle developer docs, "Verify webhook signatures"
(developer.paddle.com/webhooks/signature-verification), and
PaddleHQ/paddle-python-sdk (paddle_billing/Notifications/Verifier.py and
tests/Unit/Notification/test_Verifier.py, whose vectors tests/test_signing.py uses).

- ``Paddle-Signature: ts=<unix seconds>;h1=<hex>[;h1=<hex>...]``: semicolon-separated
  ``key=value`` items. During a secret rotation Paddle sends one ``h1`` per secret; an
  ``h1`` that is not hex is skipped, as the SDK's own test expects.
- Signed content: ``{ts}:{body}`` over the raw body bytes, HMAC-SHA256, keyed by the
  whole notification secret (``pdl_ntfset_...``) as UTF-8 bytes.
- Tolerance: five seconds, the SDK's default. The SDK refuses only old timestamps;
  this module refuses ones ahead by more than the tolerance too, the safer reading.
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

__all__ = ["SCHEME", "Paddle"]

HEADER = "Paddle-Signature"
SHAPE = "'ts=<unix seconds>;h1=<hex HMAC-SHA256>'"


class Paddle:
    """Sign and verify notifications the way Paddle Billing does."""

    name = "paddle"
    default_tolerance = 5.0

    def decode_secret(self, secret: str) -> bytes:
        """Return the whole notification secret as UTF-8 bytes."""
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
        """Return a Paddle-Signature header with one h1 signature."""
        digest = hmac.digest(key, f"{timestamp}:".encode() + body, "sha256")

        return {HEADER: f"ts={timestamp};h1={digest.hex()}"}

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
        """Check the header's timestamp, then its h1 signatures."""
        raw_timestamp, candidates = _parse(require(headers, HEADER, SHAPE))

        timestamp = parse_unix_seconds(HEADER, raw_timestamp)
        check_window(HEADER, timestamp, now, tolerance)

        signed = f"{raw_timestamp}:".encode() + body
        index = first_match(keys, signed, candidates, "sha256")
        if index is None:
            raise mismatch(HEADER, "h1 signature", keys)
        return Verified(self.name, timestamp, index)


SCHEME = Paddle()


def _parse(header: str) -> tuple[str, list[bytes]]:
    """Return the raw ``ts`` value and the decodable ``h1`` digests of the header."""
    items = [item.strip().partition("=") for item in header.split(";")]
    stamps = [value for key, sep, value in items if key == "ts" and sep]
    texts = [value for key, sep, value in items if key == "h1" and sep]
    digests = [d for d in (hex_digest(text, 32) for text in texts) if d]

    if len(stamps) != 1 or not digests:
        raise MalformedHeader(
            HEADER,
            f"The {HEADER} header should look like {SHAPE}, with items separated by "
            "semicolons, one ts and at least one 64-digit lower-case hex h1.",
        )
    return stamps[0], digests
