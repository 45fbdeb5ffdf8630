"""Sign and verify webhook deliveries, one module per provider scheme.

``sign`` produces the headers a provider would send; ``verify`` and ``Verifier`` check
a received delivery on its raw body bytes, compare in constant time, accept any of
several secrets (rotation) and raise a ``SignatureError`` subclass that says why a
delivery was refused. Schemes live in a registry (see ``hooklab.signing.base``):

==================  ===========================================================
standard-webhooks   webhook-id/-timestamp/-signature, key = base64 after whsec_
svix                the same under svix-* names (webhook-* accepted too)
stripe              Stripe-Signature t=...,v1=..., key = the whole whsec_ string
github              X-Hub-Signature-256 sha256=<hex> of the body
github-sha1         the legacy X-Hub-Signature sha1=<hex>
shopify             X-Shopify-Hmac-Sha256, base64 of the body's HMAC-SHA256
slack               X-Slack-Signature v0=<hex> of v0:{timestamp}:{body}
twilio              X-Twilio-Signature over the URL and sorted form parameters
twilio-json         the same over a URL carrying bodySHA256 (JSON bodies)
square              X-Square-HmacSha256-Signature over notification URL + body
paddle              Paddle-Signature ts=...;h1=... over {ts}:{body}
zendesk             X-Zendesk-Webhook-Signature, base64 HMAC of {timestamp}{body}
hubspot             X-HubSpot-Signature-v3 over method, URL, body, ms timestamp
hubspot-v1          the older X-HubSpot-Signature, SHA-256 of secret + body
hubspot-v2          the same over secret + method + URL + body
hmac                a plain HMAC of the body; configure one with ``PlainHmac``
==================  ===========================================================

Each module cites the provider documents and SDK tests its rules come from. Where a
scheme signs a timestamp, a delivery signed further than the tolerance from now in
either direction is refused, even where a provider's SDK checks only one direction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from hooklab.errors import ConfigError
from hooklab.signing import (
    github,
    hubspot,
    paddle,
    plain_hmac,
    shopify,
    slack,
    square,
    standard_webhooks,
    stripe,
    svix,
    twilio,
    zendesk,
)
from hooklab.signing.base import (
    Scheme,
    Verified,
    get_scheme,
    lower_headers,
    register,
    resolve,
    schemes,
)
from hooklab.signing.errors import (
    MalformedHeader,
    MissingHeader,
    SignatureError,
    SignatureMismatch,
    TimestampOutOfTolerance,
)
from hooklab.signing.plain_hmac import PlainHmac

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MalformedHeader",
    "MissingHeader",
    "PlainHmac",
    "Scheme",
    "SignatureError",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "Verified",
    "Verifier",
    "get_scheme",
    "register",
    "schemes",
    "sign",
    "verify",
]

#: The window used by schemes that sign a timestamp but name no default of their own.
DEFAULT_TOLERANCE_S = 300.0

for _module_scheme in (
    standard_webhooks.SCHEME,
    svix.SCHEME,
    stripe.SCHEME,
    github.SCHEME,
    github.SHA1_SCHEME,
    shopify.SCHEME,
    slack.SCHEME,
    twilio.SCHEME,
    twilio.JSON_SCHEME,
    square.SCHEME,
    paddle.SCHEME,
    zendesk.SCHEME,
    hubspot.SCHEME,
    hubspot.LEGACY_V1,
    hubspot.LEGACY_V2,
    plain_hmac.SCHEME,
):
    register(_module_scheme)


class Verifier:
    """Verify deliveries of one scheme against one or more secrets, decoded once.

    ``scheme`` is a registered name or a scheme object such as a ``PlainHmac``;
    ``tolerance`` defaults to the provider's own window (300 s for most, 5 s for
    Paddle) and matters only for schemes that sign a timestamp.
    """

    def __init__(
        self,
        scheme: str | Scheme,
        secrets: str | Sequence[str],
        tolerance: float | None = None,
    ) -> None:
        self._scheme = resolve(scheme)
        self._keys = tuple(self._scheme.decode_secret(s) for s in _as_list(secrets))
        self.tolerance = _check_tolerance(self._scheme, tolerance)

    @property
    def scheme(self) -> str:
        """The name of the scheme this verifier checks."""
        return self._scheme.name

    def __repr__(self) -> str:
        return (
            f"Verifier(scheme={self.scheme!r}, secrets=<{len(self._keys)} hidden>, "
            f"tolerance={self.tolerance:g})"
        )

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        url: str | None = None,
    ) -> Verified:
        """Return what was verified, or raise the SignatureError that says why not.

        ``url`` is the full URL the provider posted to; twilio, twilio-json,
        square, hubspot and hubspot-v2 sign it and need it.
        """
        return self._scheme.verify(
            self._keys,
            lower_headers(headers),
            body,
            url=url,
            now=time.time() if now is None else now,
            tolerance=self.tolerance,
        )


def sign(
    scheme: str | Scheme,
    secret: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    msg_id: str | None = None,
    url: str | None = None,
) -> dict[str, str]:
    """Return the headers the provider of ``scheme`` would send with ``body``."""
    chosen = resolve(scheme)

    return chosen.sign(
        chosen.decode_secret(secret),
        body,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        msg_id=msg_id,
        url=url,
    )


def verify(
    scheme: str | Scheme,
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    url: str | None = None,
    now: float | None = None,
    tolerance: float | None = None,
) -> Verified:
    """Verify one delivery; see ``Verifier`` to check many with the same secrets."""
    verifier = Verifier(scheme, secret, tolerance=tolerance)

    return verifier.verify(headers, body, now=now, url=url)


def _as_list(secrets: str | Sequence[str]) -> list[str]:
    listed = [secrets] if isinstance(secrets, str) else list(secrets)
    if not listed:
        raise ConfigError("A verifier needs at least one secret; none was given.")
    return listed


def _check_tolerance(scheme: Scheme, tolerance: float | None) -> float:
    if tolerance is None:
        default = scheme.default_tolerance
        return DEFAULT_TOLERANCE_S if default is None else float(default)

    if tolerance < 0:
        raise ConfigError(
            f"The timestamp tolerance must be zero or more seconds, got {tolerance}."
        )
    return float(tolerance)
