"""Remove personal details from payloads before they reach a client-facing document.

Two nets: fields whose name says they hold personal data (``email``, ``phone``,
``first_name``, ``address1`` ...) are replaced whatever their value, and any string
that looks like an e-mail address or a phone number is replaced wherever it sits.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PERSONAL_KEYS", "redact"]

#: Field names (lower-cased) whose values are personal, in the providers' spellings.
PERSONAL_KEYS = frozenset(
    {
        "address",
        "address1",
        "address2",
        "billing_address",
        "city",
        "customer_email",
        "customer_name",
        "email",
        "first_name",
        "firstname",
        "ip",
        "last_name",
        "lastname",
        "name_on_card",
        "phone",
        "phone_number",
        "shipping_address",
        "street",
        "zip",
        "postal_code",
    }
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# International numbers (+...) or the 555 123-4567 shape; bare digit runs are ids.
_PHONE = re.compile(r"\+\d[\d ()-]{7,}\d|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b")


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with personal details replaced."""
    if isinstance(value, dict):
        return {key: _redact_field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        value = _EMAIL.sub("[redacted email]", value)
        return _PHONE.sub("[redacted phone]", value)
    return value


def _redact_field(key: str, value: Any) -> Any:
    if key.lower() in PERSONAL_KEYS and value not in (None, "", [], {}):
        return f"[redacted {key}]"
    return redact(value)
