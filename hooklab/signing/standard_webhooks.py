"""The Standard Webhooks signature scheme ("standard-webhooks").

Source: the Standard Webhooks specification, github.com/standard-webhooks/
standard-webhooks, file spec/standard-webhooks.md ("Verifying webhook authenticity"),
and its reference Python library (libraries/python), whose test vectors
tests/test_signing.py reproduces.

A delivery carries three headers:

- ``webhook-id``: the message id, stable across retries of the same message;
- ``webhook-timestamp``: integer unix seconds when the attempt was signed;
- ``webhook-signature``: a space-separated list of ``<version>,<base64>`` entries.

The signed content is ``{id}.{timestamp}.{body}`` over the raw body bytes, signed with
HMAC-SHA256. The key is the base64 decoding of the secret's part after ``whsec_``
(unpadded base64 is accepted, as the reference library does). Only version ``v1``
(HMAC-SHA256) is checked; other versions, such as the asymmetric ``v1a``, are ignored.
The specification and its libraries refuse a timestamp more than five minutes away
from now in either direction; so does this module.

``StandardWebhooks`` also serves Svix (see ``hooklab.signing.svix``), which signs the
same way under ``svix-*`` header names.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping, Sequence

from hooklab.errors import ConfigError
from hooklab.signing._checks import (
    b64_digest,
    hmac_digest,
    mismatch,
    timestamp_within,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import (
    MalformedHeader,
    MissingHeader,
    SignatureError,
    SignatureMismatch,
)

__all__ = ["SCHEME", "HeaderNames", "StandardWebhooks"]

SECRET_PREFIX = "whsec_"
VERSION = "v1"

#: The id, timestamp and signature header names of one spelling of the scheme.
HeaderNames = tuple[str, str, str]

UNBRANDED: HeaderNames = ("webhook-id", "webhook-timestamp", "webhook-signature")

# Builds the result without the named tuple's argument handling: this path runs on
# every request, and it is a tenth of the whole verification's overhead.
_verified = tuple.__new__


class StandardWebhooks:
    """Sign and verify deliveries the way the Standard Webhooks specification says.

    ``header_sets`` lists the accepted spellings of the three headers, preferred
    first; ``sign`` uses the first.
    """

    default_tolerance = 300.0

    def __init__(
        self, name: str = "standard-webhooks", header_sets: Sequence[HeaderNames] = ()
    ) -> None:
        self.name = name
        self._header_sets = tuple(header_sets) or (UNBRANDED,)
        self._only = self._header_sets[0] if len(self._header_sets) == 1 else None

    def __repr__(self) -> str:
        return f"StandardWebhooks(name={self.name!r})"

    def decode_secret(self, secret: str) -> bytes:
        """Return the key: the base64 decoding of ``secret`` after any ``whsec_``."""
        encoded = secret.removeprefix(SECRET_PREFIX)
        padded = encoded + "=" * (-len(encoded) % 4)

        try:
            key = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                f"A {self.name} secret must be 'whsec_' followed by base64; "
                "the one given does not decode (its value is not shown)."
            ) from None

        if not key:
            raise ConfigError(f"A {self.name} secret must not be empty.")
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
        """Return the id, timestamp and a one-entry signature header."""
        id_name, timestamp_name, signature_name = self._header_sets[0]
        msg_id = msg_id or f"msg_{secrets.token_urlsafe(18)}"

        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = base64.b64encode(hmac.digest(key, signed, "sha256")).decode()

        return {
            id_name: msg_id,
            timestamp_name: str(timestamp),
            signature_name: f"{VERSION},{digest}",
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
        names = self._names_in(headers)
        msg_id, raw_timestamp, signature = self._require(headers, names)
        _, timestamp_name, signature_name = names

        timestamp = timestamp_within(timestamp_name, raw_timestamp, now, tolerance)

        # Compare encoded strings, as the reference library does: no entry needs
        # decoding on the way to a match, and a variant spelling never matches.
        given = _v1_entries(signature_name, signature)
        prefix = f"{msg_id}.{raw_timestamp}.".encode()
        for index, key in enumerate(keys):
            digest = hmac_digest(key, "sha256", prefix, body)
            expected = binascii.b2a_base64(digest, newline=False)
            for entry in given:
                if hmac.compare_digest(expected, entry):
                    return _verified(Verified, (self.name, timestamp, index, msg_id))

        raise _unmatched(signature_name, given, keys)

    def _names_in(self, headers: Mapping[str, str]) -> HeaderNames:
        """The first spelling any of whose headers the delivery carries."""
        if self._only:
            return self._only

        for names in self._header_sets:
            if any(name in headers for name in names):
                return names
        return self._header_sets[0]

    def _require(
        self, headers: Mapping[str, str], names: HeaderNames
    ) -> tuple[str, str, str]:
        """The stripped values of the three headers; refuse the first one absent."""
        msg_id = headers.get(names[0], "").strip()
        timestamp = headers.get(names[1], "").strip()
        signature = headers.get(names[2], "").strip()
        if msg_id and timestamp and signature:
            return msg_id, timestamp, signature

        absent = next(name for name in names if not headers.get(name, "").strip())
        spelled = " or ".join(", ".join(names) for names in self._header_sets)
        raise MissingHeader(
            absent,
            f"The {absent} header is missing or empty; a {self.name} delivery "
            f"carries {spelled}.",
        )


SCHEME = StandardWebhooks()


def _v1_entries(name: str, header: str) -> list[bytes]:
    """Return the text of the v1 entries; ignore other versions, refuse a bad list."""
    if not header.isascii():
        raise MalformedHeader(name, f"The {name} header must be ASCII text.")

    if header.startswith("v1,") and " " not in header:
        return [header[3:].encode()]  # the usual case: one entry, no rotation

    entries = header.split()
    given = [entry[3:].encode() for entry in entries if entry.startswith("v1,")]
    if given:
        return given

    versions = sorted({e.partition(",")[0] for e in entries if "," in e})
    if not versions:
        raise MalformedHeader(
            name,
            f"The {name} header must be space-separated '<version>,<base64>' "
            "entries; none of its entries has that form.",
        )
    raise SignatureMismatch(
        name,
        f"The {name} header has no {VERSION} (HMAC-SHA256) entry; "
        f"versions present: {', '.join(versions)}.",
    )


def _unmatched(name: str, given: list[bytes], keys: Sequence[bytes]) -> SignatureError:
    """Whether no v1 entry could ever match (malformed) or none did (mismatch)."""
    if not any(b64_digest(entry.decode(), 32) for entry in given):
        return MalformedHeader(
            name,
            f"The {VERSION} entries of the {name} header are empty or not canonical "
            "base64 of 32 bytes (an HMAC-SHA256).",
        )
    return mismatch(name, f"{VERSION} signature", keys)
