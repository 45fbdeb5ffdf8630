"""Redaction of personal details from payloads shown to clients."""

from __future__ import annotations

from hooklab.redact import redact


def test_personal_fields_are_replaced_whatever_their_value():
    payload = {"customer": {"first_name": "Alex", "email": "alex@example.com", "id": 7}}
    assert redact(payload) == {
        "customer": {
            "first_name": "[redacted first_name]",
            "email": "[redacted email]",
            "id": 7,
        }
    }


def test_emails_and_phones_inside_free_text_are_replaced():
    note = "Call +1 555 555 0101 or 555-555-0199, or mail alex@example.com today."
    expected = (
        "Call [redacted phone] or [redacted phone], or mail [redacted email] today."
    )
    assert redact({"note": note}) == {"note": expected}


def test_ids_prices_and_empty_personal_fields_are_kept():
    payload = {"id": "820982911946154508", "total_price": "199.00", "phone": None}
    assert redact(payload) == payload


def test_lists_are_walked_and_the_input_is_not_changed():
    payload = [{"email": "a@example.com"}]
    assert redact(payload) == [{"email": "[redacted email]"}]
    assert payload == [{"email": "a@example.com"}]


def test_shared_shopify_order_has_no_email_left(shared_data):
    """A real-format order from ../shared/data keeps no address once redacted."""
    import json

    order = json.loads(
        (shared_data / "payloads/shopify/orders.create.json").read_text()
    )
    text = json.dumps(redact(order))
    assert "@" not in text
    assert "Example Street" not in text
