"""Stripe ("stripe").

Source: Stripe docs, "Verify webhook signatures manually"
(docs.stripe.com/webhooks#verify-manually), and stripe/stripe-python
(stripe/_webhook.py, WebhookSignature, and tests/test_webhook.py).

- ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]``: comma-
  separated ``key=value`` items. During a secret roll Stripe signs with both secrets
  and sends two ``v1`` items; any one may match. ``v0`` (test-mode legacy) is never
  accepted, or a downgrade would be possible.
- Signed content: ``{t}.{body}`` over the raw body bytes, HMAC-SHA256.
- Key: the whole signing secret string, ``whsec_`` included, as UTF-8 bytes. Unlike
  Standard Webhooks, nothing is base64-decoded.
- Tolerance: 300 s. Stripe's libraries refuse only timestamps that are too old; this
  module also refuses ones more than 300 s ahead, the safer reading, since no honest
  sender signs in the future.
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
from hooklab.signing.errors import MalformedHeader, SignatureMismatch

__all__ = ["SCHEME", "Stripe"]

HEADER = "Stripe-Signature"
SHAPE = "'t=<unix seconds>,v1=<hex HMAC-SHA256>'"


class Stripe:
    """Sign and verify deliveries the way Stripe's webhook endpoints do."""

    name = "stripe"
    default_tolerance = 300.0

    def decode_secret(self, secret: str) -> bytes:
        """Return the whole secret, ``whsec_`` prefix included, as UTF-8 bytes."""
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
        """Return a Stripe-Signature header with one v1 signature."""
        digest = hmac.digest(key, f"{timestamp}.".encode() + body, "sha256")

        return {HEADER: f"t={timestamp},v1={digest.hex()}"}

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
        """Check the Stripe-Signature header's timestamp and v1 signatures."""
        raw_timestamp, candidates = _parse(require(headers, HEADER, SHAPE))

        timestamp = int(raw_timestamp)
        check_window(HEADER, timestamp, now, tolerance)

        signed = f"{raw_timestamp}.".encode() + body
        index = first_match(keys, signed, candidates, "sha256")
        if index is None:
            raise mismatch(HEADER, "v1 signature", keys)
        return Verified(self.name, timestamp, index)


SCHEME = Stripe()


def _parse(header: str) -> tuple[str, list[bytes]]:
    """Return the raw ``t`` value, checked to be digits, and the ``v1`` digests."""
    items = [item.strip().partition("=") for item in header.split(",")]
    stamps = [value for key, sep, value in items if key == "t" and sep]
    if len(stamps) != 1:
        raise MalformedHeader(
            HEADER,
            f"The {HEADER} header must carry exactly one t= item; it should look like "
            f"{SHAPE}, with items separated by commas.",
        )
    parse_unix_seconds(HEADER, stamps[0])

    v1_texts = [value for key, sep, value in items if key == "v1" and sep]
    if not v1_texts:
        raise SignatureMismatch(
            HEADER,
            f"The {HEADER} header has no v1 (HMAC-SHA256) signature; v0 and other "
            "schemes are never accepted.",
        )

    digests = [d for d in (hex_digest(text, 32) for text in v1_texts) if d]
    if not digests:
        raise MalformedHeader(
            HEADER,
            f"The v1 items of the {HEADER} header are not 64 lower-case hex digits.",
        )
    return stamps[0], digests
