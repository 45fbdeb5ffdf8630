"""Svix ("svix"): the Standard Webhooks scheme under ``svix-*`` header names.

Source: Svix docs, "Verifying Webhooks Manually"
(docs.svix.com/receiving/verifying-payloads/how-manual), and the svix/svix-webhooks
Python library (python/svix/webhooks.py and its tests). Svix signs
``{svix-id}.{svix-timestamp}.{body}`` with HMAC-SHA256 under the base64 key after
``whsec_``, lists ``v1,<base64>`` entries separated by spaces in ``svix-signature`` and
refuses timestamps more than five minutes old or ahead. Its libraries also accept the
unbranded ``webhook-*`` names, so this scheme does too: the ``svix-*`` spelling is
used when the delivery carries any of those headers, ``webhook-*`` otherwise.
"""

from __future__ import annotations

from hooklab.signing.standard_webhooks import UNBRANDED, StandardWebhooks

__all__ = ["SCHEME"]

BRANDED = ("svix-id", "svix-timestamp", "svix-signature")

SCHEME = StandardWebhooks("svix", header_sets=(BRANDED, UNBRANDED))
