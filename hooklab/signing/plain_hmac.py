"""A plain HMAC of the raw body in one header ("hmac"), configurable per provider.

Many providers sign nothing but the body: one header holding an HMAC of the raw bytes,
hex or base64, sometimes after a prefix such as ``sha256=``. ``PlainHmac`` describes
such a convention; GitHub and Shopify are instances of it (see their modules), and the
registered ``hmac`` scheme is the generic default: header ``X-Signature``, HMAC-SHA256,
lower-case hex, no prefix. Build another with ``PlainHmac(header=..., ...)`` and pass
it wherever a scheme name is accepted.

The key is the secret's UTF-8 bytes. A plain HMAC carries no timestamp, so it cannot
refuse a replayed delivery: deduplicate by the provider's delivery id instead.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence
from typing import Literal

from hooklab.errors import ConfigError
from hooklab.signing._checks import (
    b64_digest,
    first_match,
    hex_digest,
    mismatch,
    require,
    text_key,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import MalformedHeader

__all__ = ["ALGORITHMS", "ENCODINGS", "SCHEME", "PlainHmac"]

#: The digests a plain HMAC may use, with their sizes in bytes.
ALGORITHMS: dict[str, int] = {"sha1": 20, "sha256": 32, "sha512": 64}
ENCODINGS = ("hex", "base64")

Encoding = Literal["hex", "base64"]


class PlainHmac:
    """One header holding ``prefix`` + the hex or base64 HMAC of the raw body.

    ``id_header``, when given, names the header carrying the provider's delivery id,
    which ``verify`` reports as ``event_id`` and ``sign`` sets from ``msg_id``.
    """

    default_tolerance = None

    def __init__(
        self,
        name: str = "hmac",
        *,
        header: str = "X-Signature",
        algorithm: str = "sha256",
        encoding: str = "hex",
        prefix: str = "",
        id_header: str | None = None,
    ) -> None:
        self.name = name
        self.header = _check_header(header)
        self.algorithm = _check_algorithm(algorithm)
        self.encoding = _check_encoding(encoding)
        self.prefix = prefix
        self.id_header = id_header
        self._size = ALGORITHMS[algorithm]

    def __repr__(self) -> str:
        return (
            f"PlainHmac(name={self.name!r}, header={self.header!r}, "
            f"algorithm={self.algorithm!r}, encoding={self.encoding!r}, "
            f"prefix={self.prefix!r})"
        )

    def decode_secret(self, secret: str) -> bytes:
        """Return the secret's UTF-8 bytes; refuse an empty one."""
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
        """Return the signature header, and the id header when ``msg_id`` is given."""
        digest = hmac.digest(key, body, self.algorithm)
        headers = {self.header: self.prefix + self._encode(digest)}

        if self.id_header and msg_id:
            headers[self.id_header] = msg_id
        return headers

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
        """Check the one signature header against ``keys``; there is no timestamp."""
        given = self._decode(require(headers, self.header, self._shape()))

        index = first_match(keys, body, [given], self.algorithm)
        if index is None:
            raise mismatch(self.header, "signature", keys)

        event_id = headers.get(self.id_header.lower()) if self.id_header else None
        return Verified(self.name, None, index, event_id=event_id or None)

    def _encode(self, digest: bytes) -> str:
        if self.encoding == "hex":
            return digest.hex()
        return base64.b64encode(digest).decode()

    def _decode(self, value: str) -> bytes:
        """The digest in ``value``, or a refusal that says which shape was expected."""
        if not value.startswith(self.prefix):
            raise MalformedHeader(
                self.header,
                f"The {self.header} header must start with {self.prefix!r}; "
                f"it should carry {self._shape()}.",
            )

        text = value[len(self.prefix) :]
        if self.encoding == "hex":
            digest = hex_digest(text, self._size)
        else:
            digest = b64_digest(text, self._size)
        if digest is None:
            raise MalformedHeader(
                self.header,
                f"The {self.header} header does not hold {self._shape()}.",
            )
        return digest

    def _shape(self) -> str:
        case = "lower-case hex" if self.encoding == "hex" else "standard base64"
        prefix = f"{self.prefix!r} then " if self.prefix else ""
        return f"{prefix}the {case} HMAC-{self.algorithm.upper()} of the raw body"


def _check_header(header: str) -> str:
    if not header or not header.isascii() or any(c in header for c in ": \t"):
        raise ConfigError(
            f"An HMAC header name must be a plain HTTP header name such as "
            f"X-Signature, got {header!r}."
        )
    return header


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ConfigError(
            f"The HMAC algorithm must be one of {', '.join(ALGORITHMS)}, "
            f"got {algorithm!r}."
        )
    return algorithm


def _check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ConfigError(
            f"The HMAC encoding must be one of {', '.join(ENCODINGS)}, "
            f"got {encoding!r}."
        )
    return encoding


SCHEME = PlainHmac()
