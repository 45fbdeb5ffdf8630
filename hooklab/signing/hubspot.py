"""HubSpot ("hubspot", with the older "hubspot-v1" and "hubspot-v2").

Source: HubSpot developer docs, "Validating requests from HubSpot"
(developers.hubspot.com/docs/api/webhooks/validating-requests) and the changelog
"Introducing version 3 of webhook signatures"; HubSpot/hubspot-api-python
(hubspot/utils/signature.py and tests/spec/utils/test_signature.py, whose vectors
tests/test_signing_schemes.py reproduces). Every version is keyed by the app's client
secret (its UTF-8 bytes).

- ``hubspot`` (v3, the current one): ``X-HubSpot-Request-Timestamp`` holds unix
  milliseconds and ``X-HubSpot-Signature-v3`` the standard-base64 HMAC-SHA256 of
  method + URL + raw body + timestamp. HubSpot says to refuse a timestamp older than
  five minutes; hooklab refuses one that far in either direction.
- ``hubspot-v1``: ``X-HubSpot-Signature`` is the lower-case hex SHA-256 (a plain
  hash, not an HMAC) of client secret + raw body, with
  ``X-HubSpot-Signature-Version: v1``; HubSpot sends it for webhooks API
  subscriptions.
- ``hubspot-v2``: the same over client secret + method + URL + raw body, version v2;
  HubSpot sends it for workflow webhooks and CRM cards.

v1 and v2 sign no timestamp, so a replay verifies: deduplicate by event id. HubSpot
sends v3 alongside the older header where it has it; prefer ``hubspot``.

The method is always POST, the only method the receiver accepts. The URL is the one
the receiver rebuilds (its path already percent-decoded by the server, the query as
sent); HubSpot's docs ask for a few escapes in the URL to be decoded, which the
path-decoding covers but the query does not, so a query holding ``%3A`` and the like
does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from hooklab.signing._checks import (
    b64_digest,
    check_window,
    first_match,
    hex_digest,
    mismatch,
    require,
    require_url,
    text_key,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import MalformedHeader, SignatureMismatch

__all__ = ["LEGACY_V1", "LEGACY_V2", "SCHEME", "HubSpotLegacy", "HubSpotV3"]

METHOD = "POST"
V3_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
LEGACY_HEADER = "X-HubSpot-Signature"
VERSION_HEADER = "X-HubSpot-Signature-Version"
_V3_SHAPE = "the standard-base64 HMAC-SHA256 of method, URL, body and timestamp"
_MILLIS = "integer unix milliseconds"


class HubSpotV3:
    """Sign and verify requests with HubSpot's v3 signature."""

    name = "hubspot"
    default_tolerance = 300.0

    def decode_secret(self, secret: str) -> bytes:
        """Return the client secret's UTF-8 bytes."""
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
        """The v3 signature and timestamp headers of ``body`` sent to ``url``."""
        millis = str(timestamp * 1000)
        digest = hmac.digest(key, _v3_message(self.name, url, body, millis), "sha256")

        return {
            V3_HEADER: base64.b64encode(digest).decode(),
            TIMESTAMP_HEADER: millis,
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
        """Check the timestamp window, then the signature over the whole request."""
        signed_url = require_url(url, self.name)
        millis = require(headers, TIMESTAMP_HEADER, _MILLIS)
        given = b64_digest(require(headers, V3_HEADER, _V3_SHAPE), 32)
        if given is None:
            raise MalformedHeader(
                V3_HEADER, f"The {V3_HEADER} header does not hold {_V3_SHAPE}."
            )

        if not (millis.isascii() and millis.isdigit() and len(millis) <= 15):
            shown = repr(millis[:15]) + ("..." if len(millis) > 15 else "")
            raise MalformedHeader(
                TIMESTAMP_HEADER,
                f"The {TIMESTAMP_HEADER} header must hold {_MILLIS}, got {shown}.",
            )
        timestamp = int(millis) // 1000
        check_window(TIMESTAMP_HEADER, timestamp, now, tolerance)

        signed = _v3_message(self.name, signed_url, body, millis)
        index = first_match(keys, signed, [given], "sha256")
        if index is None:
            raise mismatch(V3_HEADER, "v3 signature", keys)
        return Verified(self.name, timestamp, index)


class HubSpotLegacy:
    """Sign and verify HubSpot's older, untimed v1 or v2 signature."""

    default_tolerance = None

    def __init__(self, version: str) -> None:
        self.version = version
        self.name = f"hubspot-{version}"

    def decode_secret(self, secret: str) -> bytes:
        """Return the client secret's UTF-8 bytes."""
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
        """Return the signature and version headers for ``body``."""
        digest = hashlib.sha256(key + self._request(url, body)).hexdigest()
        return {LEGACY_HEADER: digest, VERSION_HEADER: self.version}

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
        """Check the version header if sent, then the hash over secret + request."""
        request = self._request(url, body)
        shape = f"the lower-case hex SHA-256 of client secret + {self.version} request"
        given = hex_digest(require(headers, LEGACY_HEADER, shape), 32)
        if given is None:
            raise MalformedHeader(
                LEGACY_HEADER, f"The {LEGACY_HEADER} header does not hold {shape}."
            )
        version = headers.get(VERSION_HEADER.lower(), self.version).strip()
        if version != self.version:
            advice = (
                f"configure scheme 'hubspot-{version}', or better 'hubspot' (v3)"
                if version in ("v1", "v2")
                else "HubSpot sends only v1 or v2 there"
            )
            raise SignatureMismatch(
                VERSION_HEADER,
                f"The {VERSION_HEADER} header says {version[:8]!r}, but this source "
                f"checks {self.version} signatures; {advice}.",
            )

        for index, key in enumerate(keys):
            if hmac.compare_digest(hashlib.sha256(key + request).digest(), given):
                return Verified(self.name, None, index)
        raise mismatch(LEGACY_HEADER, f"{self.version} signature", keys)

    def _request(self, url: str | None, body: bytes) -> bytes:
        """What follows the secret in the hashed text: v2 adds method and URL."""
        if self.version == "v1":
            return body
        return (METHOD + require_url(url, self.name)).encode() + body


SCHEME = HubSpotV3()
LEGACY_V1 = HubSpotLegacy("v1")
LEGACY_V2 = HubSpotLegacy("v2")


def _v3_message(scheme: str, url: str | None, body: bytes, millis: str) -> bytes:
    return (METHOD + require_url(url, scheme)).encode() + body + millis.encode()
