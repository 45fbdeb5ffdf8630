"""Square ("square").

Source: Square developer docs, "Validate webhook notifications"
(developer.squareup.com/docs/webhooks/step3validate), and square/square-python-sdk
(square/utils/webhooks_helper.py, is_valid_webhook_event_signature, and
tests/integration/test_webhooks_helper.py, whose vectors tests/test_signing.py uses).

``x-square-hmacsha256-signature`` holds the standard-base64 HMAC-SHA256 of the
notification URL (exactly as registered in the subscription) followed by the raw body,
keyed by the subscription's signature key (its UTF-8 bytes). There is no timestamp, so
a replay verifies: deduplicate by the body's ``event_id``. The legacy
``x-square-signature`` header (HMAC-SHA1) is not supported: Square signs every
subscription with the SHA-256 header too.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence

from hooklab.signing._checks import (
    b64_digest,
    first_match,
    mismatch,
    require,
    require_url,
    text_key,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import MalformedHeader

__all__ = ["SCHEME", "Square"]

HEADER = "X-Square-HmacSha256-Signature"
SHAPE = "the standard-base64 HMAC-SHA256 of the notification URL and the raw body"


class Square:
    """Sign and verify event notifications the way Square does."""

    name = "square"
    default_tolerance = None

    def decode_secret(self, secret: str) -> bytes:
        """Return the signature key's UTF-8 bytes."""
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
        """Return the signature header for ``body`` sent to notification ``url``."""
        signed = require_url(url, self.name).encode() + body
        digest = hmac.digest(key, signed, "sha256")

        return {HEADER.lower(): base64.b64encode(digest).decode()}

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
        """Check the signature over the notification URL and the body."""
        signed = require_url(url, self.name).encode() + body
        given = b64_digest(require(headers, HEADER, SHAPE), 32)
        if given is None:
            raise MalformedHeader(HEADER, f"The {HEADER} header does not hold {SHAPE}.")

        index = first_match(keys, signed, [given], "sha256")
        if index is None:
            raise mismatch(HEADER, "signature", keys)
        return Verified(self.name, None, index)


SCHEME = Square()
