"""Zendesk ("zendesk").

Source: Zendesk developer docs, "Verifying webhook authenticity"
(developer.zendesk.com/documentation/webhooks/verifying/), and "Anatomy of a webhook
request" (developer.zendesk.com/documentation/webhooks/anatomy-of-a-webhook-request),
whose example headers show the timestamp's form.

- ``X-Zendesk-Webhook-Signature-Timestamp``: an ISO 8601 UTC time to the second,
  such as ``2021-03-25T05:09:27Z``.
- ``X-Zendesk-Webhook-Signature``: the standard-base64 HMAC-SHA256 of the timestamp
  header's value followed directly by the raw body (no separator), keyed by the
  webhook's signing secret (its UTF-8 bytes, as the docs' Node.js example uses it).
- Tolerance: Zendesk publishes none; hooklab refuses a timestamp more than five
  minutes away in either direction, the window most timestamped schemes use.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from hooklab.signing._checks import (
    b64_digest,
    check_window,
    first_match,
    mismatch,
    require,
    text_key,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import MalformedHeader

__all__ = ["SCHEME", "Zendesk"]

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
_SHAPE = "the standard-base64 HMAC-SHA256 of the timestamp header and the raw body"
_TIME = "an ISO 8601 UTC time such as 2021-03-25T05:09:27Z"
_ISO_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


class Zendesk:
    """Sign and verify webhook requests the way Zendesk signs them."""

    name = "zendesk"
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
        """Return the signature and timestamp headers for ``body``."""
        stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hmac.digest(key, stamp.encode() + body, "sha256")

        return {
            SIGNATURE_HEADER: base64.b64encode(digest).decode(),
            TIMESTAMP_HEADER: stamp,
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
        """Check the timestamp window, then the signature over timestamp + body."""
        stamp = require(headers, TIMESTAMP_HEADER, _TIME)
        given = b64_digest(require(headers, SIGNATURE_HEADER, _SHAPE), 32)
        if given is None:
            raise MalformedHeader(
                SIGNATURE_HEADER,
                f"The {SIGNATURE_HEADER} header does not hold {_SHAPE}.",
            )

        timestamp = _unix_seconds(stamp)
        check_window(TIMESTAMP_HEADER, timestamp, now, tolerance)

        index = first_match(keys, stamp.encode() + body, [given], "sha256")
        if index is None:
            raise mismatch(SIGNATURE_HEADER, "signature", keys)
        return Verified(self.name, timestamp, index)


SCHEME = Zendesk()


def _unix_seconds(stamp: str) -> int:
    """The unix seconds of a Zendesk timestamp, or the refusal that names it."""
    try:
        if _ISO_UTC.fullmatch(stamp) is None:
            raise ValueError(stamp)
        parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        shown = repr(stamp[:24]) + ("..." if len(stamp) > 24 else "")
        raise MalformedHeader(
            TIMESTAMP_HEADER,
            f"The {TIMESTAMP_HEADER} header must hold {_TIME}, got {shown}.",
        ) from None
    return int(parsed.timestamp())
