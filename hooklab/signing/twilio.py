"""Twilio ("twilio" for form posts, "twilio-json" for JSON bodies).

Source: Twilio docs, "Webhooks security" (twilio.com/docs/usage/webhooks/
webhooks-security, "Validating signatures from Twilio"), and twilio/twilio-python
(twilio/request_validator.py and tests/unit/test_request_validator.py, whose vectors
tests/test_signing.py uses).

``X-Twilio-Signature`` holds the standard-base64 HMAC-SHA1, keyed by the account's
Auth Token (its UTF-8 bytes), of a string built from the request:

- ``twilio``: the full URL Twilio requested (scheme, host, path and query), then every
  POST form parameter of the body sorted by name, each appended as name + value with no
  separator. A name sent several times contributes each of its distinct values, sorted.
- ``twilio-json``: for a JSON body, Twilio adds ``bodySHA256=<hex SHA-256 of the body>``
  to the URL's query and signs the URL alone. Verifying checks the URL's signature,
  then that the body hashes to that parameter.

Twilio's own validators try the URL both with and without its port, because the
signature may have been computed on either (``https://host/x`` versus
``https://host:443/x``); so does this module. Twilio signs no timestamp, so a replay
verifies: deduplicate by ``I-Twilio-Idempotency-Token``, returned as the event id.

Twilio signs the decoded parameters, not the body's bytes, so two spellings of the
same form (``a=x+y`` and ``a=x%20y``) verify alike; that is the provider's design.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from hooklab.errors import ConfigError
from hooklab.signing._checks import (
    b64_digest,
    first_match,
    mismatch,
    require,
    require_url,
    text_key,
)
from hooklab.signing.base import Verified
from hooklab.signing.errors import MalformedHeader, SignatureMismatch

__all__ = ["JSON_SCHEME", "SCHEME", "Twilio", "form_params", "url_with_body_hash"]

HEADER = "X-Twilio-Signature"
ID_HEADER = "I-Twilio-Idempotency-Token"
BODY_HASH = "bodySHA256"
SHAPE = "the standard-base64 HMAC-SHA1 of the URL and the sorted form parameters"


class Twilio:
    """Sign and verify Twilio webhooks; ``json`` selects the bodySHA256 variant."""

    default_tolerance = None

    def __init__(self, *, json: bool = False) -> None:
        self.json = json
        self.name = "twilio-json" if json else "twilio"

    def __repr__(self) -> str:
        return f"Twilio(json={self.json})"

    def decode_secret(self, secret: str) -> bytes:
        """Return the Auth Token's UTF-8 bytes."""
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
        """Return X-Twilio-Signature for ``body`` posted to ``url``.

        For ``twilio-json`` the signed URL is ``url_with_body_hash(url, body)``: post
        the body to that URL.
        """
        url = require_url(url, self.name)
        if self.json:
            url = url_with_body_hash(url, body)

        digest = hmac.digest(key, (url + self._params(body)).encode(), "sha1")
        headers = {HEADER: base64.b64encode(digest).decode()}

        if msg_id:
            headers[ID_HEADER] = msg_id
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
        """Check the signature over the URL (either port spelling) and the body."""
        url = require_url(url, self.name)
        given = b64_digest(require(headers, HEADER, SHAPE), 20)
        if given is None:
            raise MalformedHeader(HEADER, f"The {HEADER} header does not hold {SHAPE}.")

        params = self._params(body)
        signed = [(variant + params).encode() for variant in _port_variants(url)]
        index = _first_match_any(keys, signed, given)
        if index is None:
            raise mismatch(HEADER, "signature", keys)

        if self.json:
            _check_body_hash(url, body)
        event_id = headers.get(ID_HEADER.lower()) or None
        return Verified(self.name, None, index, event_id=event_id)

    def _params(self, body: bytes) -> str:
        """What follows the URL in the signed string: the sorted form parameters."""
        if self.json:
            return ""

        values: dict[str, set[str]] = {}
        for name, value in form_params(body):
            values.setdefault(name, set()).add(value)
        return "".join(
            name + v for name in sorted(values) for v in sorted(values[name])
        )


SCHEME = Twilio()
JSON_SCHEME = Twilio(json=True)


def form_params(body: bytes) -> list[tuple[str, str]]:
    """The ``application/x-www-form-urlencoded`` parameters of ``body``, in order.

    Blank values are kept (Twilio signs ``Body=`` as ``Body``); bytes that are not
    UTF-8 are replaced, the way a web framework would decode them.
    """
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def url_with_body_hash(url: str, body: bytes) -> str:
    """``url`` with ``bodySHA256=<hex SHA-256 of body>`` added to its query."""
    if BODY_HASH in parse_qs(urlsplit(url).query):
        return url

    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{BODY_HASH}={hashlib.sha256(body).hexdigest()}"


def _first_match_any(
    keys: Sequence[bytes], signed: Sequence[bytes], given: bytes
) -> int | None:
    for content in signed:
        index = first_match(keys, content, [given], "sha1")
        if index is not None:
            return index
    return None


def _port_variants(url: str) -> list[str]:
    """``url`` as given, then with its port removed or the default port added."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"The URL {url!r} has a port that is not a number.") from None

    if port is not None:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        default = 443 if parts.scheme == "https" else 80
        other = parts._replace(netloc=f"{parts.netloc}:{default}")
    return [url, urlunsplit(other)]


def _check_body_hash(url: str, body: bytes) -> None:
    """Refuse a body whose SHA-256 is not the bodySHA256 the signed URL carries."""
    given = parse_qs(urlsplit(url).query).get(BODY_HASH)
    if not given:
        raise SignatureMismatch(
            HEADER,
            f"The URL has no {BODY_HASH} query parameter, so the {HEADER} header "
            "does not cover the body; Twilio adds it to every JSON delivery.",
        )

    actual = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(actual, given[0].lower()):
        raise SignatureMismatch(
            HEADER,
            f"The body's SHA-256 differs from the {BODY_HASH} parameter of the URL "
            f"that the {HEADER} header signs: the body was changed after signing.",
        )
