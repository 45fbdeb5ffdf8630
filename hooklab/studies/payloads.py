"""Realistic webhook bodies for the lab, with fake personal data only.

Shapes follow the providers' public formats: a Shopify-style order for
``order.created`` and ``order.fulfilled``, a Stripe-style event envelope for
``invoice.paid`` and ``subscription.cancelled``, and a web-form lead for
``form.submitted``. People are "Alex Example" and friends, emails are at example.com
and phone numbers are +1555555xxxx. Every value comes from the ``rng`` passed in, so a
seeded generator gives the same bodies every run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["EVENT_TYPES", "make_payload", "wrap_standard_webhooks"]

Payload = dict[str, Any]

_FIRST_NAMES = ["Alex", "Sam", "Robin", "Jordan", "Casey", "Taylor"]
_LAST_NAMES = ["Example", "Sample", "Testperson", "Placeholder"]
_COMPANIES = ["Example Co", "Sample Supplies Ltd", "Placeholder Studio"]
_PRODUCTS = [
    ("MUG-BLU-350", "Blue enamel mug", "14.00"),
    ("TEE-ORG-M", "Organic tee, medium", "24.50"),
    ("BAG-CNV-01", "Canvas tote", "18.00"),
    ("CND-SOY-220", "Soy candle 220 g", "21.90"),
]
_BASE_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_payload(
    event_type: str, rng: random.Random, *, event_id: str, currency: str = "USD"
) -> Payload:
    """Return a body for ``event_type``; unknown types get a generic envelope.

    Amounts are in ``currency``, written the provider's way: upper case in a
    Shopify-style order, lower case in a Stripe-style event.
    """
    builder = _BUILDERS.get(event_type)
    if builder is None:
        return {"type": event_type, "id": event_id, "data": {}}
    payload = builder(event_type, rng, event_id)
    if "currency" in payload:
        payload["currency"] = currency.upper()
    stripe_object = payload.get("data", {}).get("object")
    if isinstance(stripe_object, dict) and "currency" in stripe_object:
        stripe_object["currency"] = currency.lower()
    return payload


def wrap_standard_webhooks(
    event_type: str, payload: Payload, *, timestamp: datetime
) -> Payload:
    """Wrap ``payload`` in the Standard Webhooks envelope {type, timestamp, data}."""
    iso = timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": iso, "data": payload}


def _person(rng: random.Random) -> Payload:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}.{last.lower()}@example.com",
        "phone": f"+1555555{rng.randrange(10_000):04d}",
    }


def _address(person: Payload) -> Payload:
    return {
        "name": f"{person['first_name']} {person['last_name']}",
        "address1": "1 Example Street",
        "city": "Exampleville",
        "zip": "00000",
        "country_code": "US",
        "phone": person["phone"],
    }


def _when(rng: random.Random) -> datetime:
    return _BASE_TIME + timedelta(seconds=rng.randrange(30 * 24 * 3600))


def _order(event_type: str, rng: random.Random, event_id: str) -> Payload:
    person = _person(rng)
    lines = [_line_item(rng) for _ in range(rng.randint(1, 3))]
    total = sum(float(line["price"]) * line["quantity"] for line in lines)
    number = rng.randint(1001, 9999)

    order: Payload = {
        "id": rng.randrange(10**15, 10**16),
        "name": f"#{number}",
        "order_number": number,
        "email": person["email"],
        "created_at": _when(rng).isoformat(),
        "currency": "USD",
        "financial_status": "paid",
        "total_price": f"{total:.2f}",
        "line_items": lines,
        "customer": {"id": rng.randrange(10**12, 10**13), **person},
        "shipping_address": _address(person),
        "note_attributes": [{"name": "hooklab_event", "value": event_id}],
    }
    if event_type == "order.fulfilled":
        order["fulfillment_status"] = "fulfilled"
    return order


def _line_item(rng: random.Random) -> Payload:
    sku, title, price = rng.choice(_PRODUCTS)
    return {"sku": sku, "title": title, "quantity": rng.randint(1, 4), "price": price}


def _stripe_event(event_type: str, rng: random.Random, event_id: str) -> Payload:
    created = int(_when(rng).timestamp())
    obj = _invoice(rng) if event_type == "invoice.paid" else _subscription(rng)
    stripe_type = (
        "customer.subscription.deleted"
        if event_type == "subscription.cancelled"
        else event_type
    )
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "type": stripe_type,
        "created": created,
        "livemode": False,
        "data": {"object": obj},
    }


def _invoice(rng: random.Random) -> Payload:
    amount = rng.choice([2900, 4900, 9900, 19900])
    return {
        "id": f"in_TEST{rng.randrange(16**8):08x}",
        "object": "invoice",
        "customer": f"cus_TEST{rng.randrange(10**4):04d}",
        "customer_email": _person(rng)["email"],
        "amount_due": amount,
        "amount_paid": amount,
        "currency": "usd",
        "status": "paid",
        "paid": True,
    }


def _subscription(rng: random.Random) -> Payload:
    return {
        "id": f"sub_TEST{rng.randrange(16**8):08x}",
        "object": "subscription",
        "customer": f"cus_TEST{rng.randrange(10**4):04d}",
        "status": "canceled",
        "cancel_at_period_end": False,
        "canceled_at": int(_when(rng).timestamp()),
        "items": {"object": "list", "data": [{"price": {"id": "price_TESTmonthly"}}]},
    }


def _lead(event_type: str, rng: random.Random, event_id: str) -> Payload:
    person = _person(rng)
    return {
        "id": event_id,
        "form": "contact-sales",
        "submitted_at": _when(rng).isoformat(),
        "name": f"{person['first_name']} {person['last_name']}",
        "email": person["email"],
        "phone": person["phone"],
        "company": rng.choice(_COMPANIES),
        "message": "We would like a quote for 40 branded mugs.",
    }


_BUILDERS: dict[str, Callable[[str, random.Random, str], Payload]] = {
    "order.created": _order,
    "order.fulfilled": _order,
    "invoice.paid": _stripe_event,
    "subscription.cancelled": _stripe_event,
    "form.submitted": _lead,
}

EVENT_TYPES = tuple(sorted(_BUILDERS))
