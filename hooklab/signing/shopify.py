"""Shopify ("shopify").

Source: Shopify dev docs, "Verify webhooks" (shopify.dev/docs/apps/build/webhooks/
subscribe/https#step-5-verify-the-webhook), and Shopify/shopify-app-js
(packages/apps/shopify-api/lib/webhooks/validate.ts and its tests).

``X-Shopify-Hmac-Sha256`` holds the standard-base64 HMAC-SHA256 of the raw body, keyed
by the app's client secret (its UTF-8 bytes). There is no timestamp in the signature:
``X-Shopify-Triggered-At`` is not signed, so a replay verifies; deduplicate by
``X-Shopify-Webhook-Id``, which ``verify`` returns as the event id.
"""

from __future__ import annotations

from hooklab.signing.plain_hmac import PlainHmac

__all__ = ["SCHEME"]

SCHEME = PlainHmac(
    "shopify",
    header="X-Shopify-Hmac-Sha256",
    algorithm="sha256",
    encoding="base64",
    id_header="X-Shopify-Webhook-Id",
)
