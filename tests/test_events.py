"""Tests for hooklab.events: event id and type read each provider's way."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hooklab.events import decode_body, known_providers, open_envelope

BODY = json.dumps(
    {"id": "evt_body", "event_id": "Ev_body", "type": "invoice.paid"}
).encode()


@pytest.mark.parametrize(
    ("provider", "headers", "event_id", "event_type"),
    [
        ("standard-webhooks", {"webhook-id": "msg_1"}, "msg_1", "invoice.paid"),
        ("svix", {"svix-id": "msg_2"}, "msg_2", "invoice.paid"),
        ("stripe", {}, "evt_body", "invoice.paid"),
        (
            "github",
            {"X-GitHub-Delivery": "72d3162e", "X-GitHub-Event": "push"},
            "72d3162e",
            "push",
        ),
        (
            "shopify",
            {
                "X-Shopify-Webhook-Id": "wh_1",
                "X-Shopify-Event-Id": "ev_1",
                "X-Shopify-Topic": "orders/create",
            },
            "ev_1",
            "orders/create",
        ),
        (
            "shopify",
            {"X-Shopify-Webhook-Id": "wh_1", "X-Shopify-Topic": "orders/create"},
            "wh_1",
            "orders/create",
        ),
        ("slack", {}, "Ev_body", "invoice.paid"),
        ("square", {}, "Ev_body", "invoice.paid"),
        ("hmac", {"webhook-id": "msg_3"}, "msg_3", "invoice.paid"),
    ],
    ids=[
        "standard",
        "svix-alias",
        "stripe-body",
        "github-header",
        "shopify-event-id",
        "shopify-webhook-id",
        "slack-body",
        "square-body",
        "generic",
    ],
)
def test_open_envelope_reads_id_and_type_provider_way(
    provider: str, headers: dict[str, str], event_id: str, event_type: str
) -> None:
    envelope = open_envelope(provider, headers, BODY)

    assert (envelope.event_id, envelope.event_type) == (event_id, event_type)
    assert envelope.quarantine is None


def test_open_envelope_no_id_anywhere_uses_content_hash() -> None:
    envelope = open_envelope("hmac", {}, b'{"type": "x"}')

    assert envelope.event_id == "sha256:" + hashlib.sha256(b'{"type": "x"}').hexdigest()
    assert envelope.id_from == "content hash"


def test_open_envelope_scheme_id_comes_before_hash() -> None:
    envelope = open_envelope("hmac", {}, b"{}", scheme_id="from-scheme")

    assert (envelope.event_id, envelope.id_from) == ("from-scheme", "signature scheme")


def test_open_envelope_stripe_numeric_id_is_text() -> None:
    """Large ids (Shopify's order ids) must not lose digits through a float."""
    envelope = open_envelope("stripe", {}, b'{"id": 820982911946154508}')

    assert envelope.event_id == "820982911946154508"


def test_open_envelope_github_action_is_part_of_type() -> None:
    headers = {"x-github-delivery": "d1", "x-github-event": "issues"}

    envelope = open_envelope("github", headers, b'{"action": "opened"}')

    assert envelope.event_type == "issues.opened"


def test_open_envelope_type_field_overrides_provider_rule() -> None:
    envelope = open_envelope(
        "stripe", {}, b'{"id": "e", "kind": "a.b"}', type_field="kind"
    )

    assert envelope.event_type == "a.b"


def test_open_envelope_twilio_form_body_is_decoded() -> None:
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "I-Twilio-Idempotency-Token": "tok_1",
    }

    envelope = open_envelope("twilio", headers, b"MessageSid=SM1&MessageStatus=sent")

    assert (envelope.event_id, envelope.event_type) == ("tok_1", "sent")
    assert envelope.payload == {"MessageSid": "SM1", "MessageStatus": "sent"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{not json", "not valid JSON"),
    ],
    ids=["empty", "bad-utf8", "bad-json"],
)
def test_decode_body_undecodable_gives_reason(body: bytes, reason: str) -> None:
    payload, quarantine = decode_body(body)

    assert payload is None
    assert reason in (quarantine or "")


def test_known_providers_cover_the_issue_list() -> None:
    assert {"standard-webhooks", "stripe", "github", "shopify", "slack"} <= set(
        known_providers()
    )


@pytest.mark.parametrize(
    ("provider", "sample"),
    [
        ("shopify", "payloads/shopify/orders.create.request.json"),
        ("github", "payloads/github/push.request.json"),
        ("stripe", "payloads/stripe/invoice.paid.request.json"),
    ],
    ids=["shopify", "github", "stripe"],
)
def test_open_envelope_real_captured_delivery_has_provider_id(
    shared_data: Path, provider: str, sample: str
) -> None:
    captured = json.loads((shared_data / sample).read_text())
    body = json.dumps(captured["body"]).encode()

    envelope = open_envelope(provider, captured["headers"], body)

    assert envelope.id_from != "content hash"
    assert envelope.event_type


@pytest.mark.parametrize(
    "sample", ["ticket.agent_assignment_changed.json", "user.active_changed.json"]
)
def test_open_envelope_zendesk_event_body_gives_id_and_type(
    shared_data: Path, sample: str
) -> None:
    body = (shared_data / "payloads/zendesk" / sample).read_bytes()
    payload = json.loads(body)

    envelope = open_envelope("zendesk", {}, body)

    assert (envelope.event_id, envelope.id_from) == (payload["id"], "body id")
    assert envelope.event_type == payload["type"]
    assert envelope.event_type.startswith("zen:event-type:")


FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_open_envelope_json_labelled_as_form_is_read_as_json() -> None:
    """curl -d sends JSON with a form content type; the JSON is what was meant."""
    body = b'{"id": "evt_1", "type": "invoice.paid"}'

    envelope = open_envelope("stripe", FORM, body)

    assert (envelope.event_id, envelope.event_type) == ("evt_1", "invoice.paid")
    assert envelope.quarantine is None


def test_open_envelope_form_body_from_json_only_provider_is_quarantined() -> None:
    envelope = open_envelope("shopify", FORM, b"order=1001&total=12.50")

    assert envelope.payload is None
    assert "came as a form, which this provider never sends" in (
        envelope.quarantine or ""
    )


@pytest.mark.parametrize(
    "provider", ["twilio", "hmac", "github", "github-sha1", "slack"]
)
def test_open_envelope_form_body_decodes_where_forms_are_sent(provider: str) -> None:
    """GitHub's form content type and Slack's slash commands are forms too."""
    envelope = open_envelope(provider, FORM, b"MessageStatus=sent&To=%2B1555")

    assert envelope.payload == {"MessageStatus": "sent", "To": "+1555"}
    assert envelope.quarantine is None


def test_open_envelope_hubspot_retry_of_a_batch_is_the_same_event(
    shared_data: Path,
) -> None:
    """HubSpot counts attemptNumber up on a retry; the batch's id must not change."""
    body = (shared_data / "payloads/hubspot/contact.creation.raw.txt").read_bytes()
    retried = body.replace(b'"attemptNumber":0', b'"attemptNumber":1')
    other = body.replace(b'"eventId":1', b'"eventId":2')
    assert retried != body

    first, again, different = (
        open_envelope("hubspot", {}, b) for b in (body, retried, other)
    )

    assert first.event_id.startswith("hubspot-batch:")
    assert again.event_id == first.event_id
    assert different.event_id != first.event_id
    assert first.event_type == "contact.creation"
