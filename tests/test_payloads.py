"""Tests for hooklab.studies.payloads."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime

import pytest

from hooklab.studies.payloads import EVENT_TYPES, make_payload, wrap_standard_webhooks


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_make_payload_same_seed_same_body(event_type: str) -> None:
    first = make_payload(event_type, random.Random(3), event_id="e1")

    assert first == make_payload(event_type, random.Random(3), event_id="e1")
    assert json.loads(json.dumps(first)) == first


@pytest.mark.parametrize("event_type", ["order.created", "order.fulfilled"])
def test_make_payload_order_has_shopify_shape(event_type: str) -> None:
    order = make_payload(event_type, random.Random(1), event_id="e1")

    assert re.fullmatch(r"#\d{4}", order["name"])
    assert isinstance(order["total_price"], str)
    assert {"sku", "quantity", "price"} <= order["line_items"][0].keys()
    assert {"first_name", "last_name", "email", "phone"} <= order["customer"].keys()
    assert order["shipping_address"]["address1"] == "1 Example Street"


@pytest.mark.parametrize("event_type", ["invoice.paid", "subscription.cancelled"])
def test_make_payload_billing_has_stripe_envelope(event_type: str) -> None:
    event = make_payload(event_type, random.Random(1), event_id="evt_TEST1")

    assert (event["id"], event["object"]) == ("evt_TEST1", "event")
    assert isinstance(event["created"], int)
    assert "object" in event["data"]["object"]


@pytest.mark.parametrize("seed", range(20))
def test_make_payload_personal_data_is_fake(seed: int) -> None:
    """Every email is at example.com and every phone is +1555555xxxx."""
    rng = random.Random(seed)
    text = json.dumps([make_payload(kind, rng, event_id="e") for kind in EVENT_TYPES])

    emails = re.findall(r"[\w.+-]+@[\w.-]+", text)
    phones = re.findall(r"\+\d{7,}", text)
    assert emails and all(email.endswith("@example.com") for email in emails)
    assert phones and all(re.fullmatch(r"\+1555555\d{4}", p) for p in phones)


def test_make_payload_unknown_type_is_generic() -> None:
    body = make_payload("thing.happened", random.Random(1), event_id="e9")

    assert body == {"type": "thing.happened", "id": "e9", "data": {}}


def test_wrap_standard_webhooks_has_type_timestamp_data() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    body = wrap_standard_webhooks("form.submitted", {"a": 1}, timestamp=when)

    assert body == {
        "type": "form.submitted",
        "timestamp": "2026-01-02T03:04:05Z",
        "data": {"a": 1},
    }
