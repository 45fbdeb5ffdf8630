"""The envelope of a webhook delivery: its event id, type and decoded payload.

Each provider says in its own way which event a delivery carries, and a retry of the
same event carries the same id. ``open_envelope`` reads the id and type the
provider's way, keyed by provider (or signature scheme) name:

- standard-webhooks, svix: id ``webhook-id`` (or ``svix-id``), type body ``type``;
- stripe: id body ``id``, type body ``type``;
- github, github-sha1: id ``X-GitHub-Delivery``, type ``X-GitHub-Event`` with the
  body's ``action`` appended (``issues.opened``);
- shopify: id ``X-Shopify-Event-Id``, else ``X-Shopify-Webhook-Id``; type
  ``X-Shopify-Topic``;
- slack: id body ``event_id``, type body ``event.type``;
- square: id body ``event_id``, type body ``type``; paddle: the same with type
  ``event_type``;
- twilio, twilio-json: id ``I-Twilio-Idempotency-Token``, type ``MessageStatus``;
- zendesk: id body ``id``, type body ``type``;
- hubspot: one id per batch of events, from the events without their
  ``attemptNumber``; type their shared ``subscriptionType``;
- anything else (hmac, ...): id ``webhook-id``, type body ``type``.

When the provider's id is absent, the id the signature scheme reported is used, and
a SHA-256 of the body is the last resort (so a byte-identical retry is still one
event). A body that cannot be decoded is quarantined: it keeps its id and the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from hooklab.signing.base import lower_headers

__all__ = ["Envelope", "decode_body", "known_providers", "open_envelope"]

MAX_ID_CHARS = 256

_Rule = Callable[[Mapping[str, str], Any], str | None]


class Envelope(NamedTuple):
    """What the receiver learns from one delivery before storing it.

    ``id_from`` says where the id came from (a header, a body field, the scheme or
    the content hash); ``quarantine`` is why the body could not be decoded, if so.
    """

    event_id: str
    event_type: str | None
    payload: Any
    quarantine: str | None
    id_from: str


def open_envelope(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    scheme_id: str | None = None,
    type_field: str | None = None,
) -> Envelope:
    """Read the event id, type and payload of one delivery the provider's way.

    ``headers`` may use any case; ``type_field`` overrides where the type is read
    from (a top-level body field).
    """
    lowered = lower_headers(headers)
    forms = provider in _FORM_SENDERS or provider not in _RULES
    payload, quarantine = decode_body(
        body, lowered.get("content-type", ""), forms=forms
    )
    id_rule, type_rule, id_where = _RULES.get(provider, _GENERIC)

    event_id, id_from = _first_id(
        (id_rule(lowered, payload), id_where), (scheme_id, "signature scheme")
    )
    if event_id is None:
        event_id, id_from = "sha256:" + hashlib.sha256(body).hexdigest(), "content hash"

    event_type = (
        _text(payload.get(type_field))
        if type_field and isinstance(payload, dict)
        else type_rule(lowered, payload)
    )
    return Envelope(event_id, event_type, payload, quarantine, id_from)


def decode_body(
    body: bytes, content_type: str = "", *, forms: bool = True
) -> tuple[Any, str | None]:
    """Return the decoded body, or None and the reason it could not be decoded.

    JSON is tried first, whatever the content type says: ``curl -d`` labels a JSON
    body as a form. A body that is not JSON but is sent as a form decodes to a dict
    when ``forms`` allows it (Twilio, and senders hooklab has no rule for); for a
    provider that only sends JSON it is quarantined.
    """
    if not body:
        return None, "The body is empty."
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"The body is not UTF-8 text (bad byte at {exc.start})."

    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        reason = f"The body is not valid JSON ({exc.msg} at char {exc.pos})."
        if content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
            return None, reason
        if forms:
            return dict(parse_qsl(text, keep_blank_values=True)), None
        return (
            None,
            f"{reason[:-1]}; it came as a form, which this provider never sends.",
        )
    except RecursionError:
        return None, "The body's JSON is nested too deeply to decode."
    except ValueError:  # Python refuses integers of more than 4,300 digits
        return None, "The body's JSON holds a number too long to decode."


def known_providers() -> list[str]:
    """The provider names with their own id rule, sorted."""
    return sorted(_RULES)


def _first_id(*candidates: tuple[str | None, str]) -> tuple[str | None, str]:
    for value, where in candidates:
        if value and len(value) <= MAX_ID_CHARS:
            return value, where
    return None, ""


def _text(value: Any) -> str | None:
    """A non-empty id or type as text; numbers become their decimal text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and (value.isascii() or _is_utf8(value)):
        return value.strip() or None
    return None  # a lone surrogate from a JSON escape has no UTF-8 form to store


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _field(*path: str) -> _Rule:
    """A rule that reads ``path`` inside a JSON object body."""

    def read(headers: Mapping[str, str], payload: Any) -> str | None:
        node = payload
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return _text(node)

    return read


def _header(*names: str) -> _Rule:
    """A rule that reads the first of ``names`` the delivery carries."""

    def read(headers: Mapping[str, str], payload: Any) -> str | None:
        for name in names:  # a loop, not a generator: it runs for every delivery
            value = headers.get(name)
            if value:
                return _text(value)
        return None

    return read


def _github_type(headers: Mapping[str, str], payload: Any) -> str | None:
    """``X-GitHub-Event``, with the body's ``action`` appended when it has one."""
    event = _text(headers.get("x-github-event"))
    action = _field("action")(headers, payload)
    return f"{event}.{action}" if event and action else event


def _hubspot_batch_id(headers: Mapping[str, str], payload: Any) -> str | None:
    """One id for a HubSpot webhooks-API batch, the same on every retry of it.

    HubSpot posts a JSON array of events and counts ``attemptNumber`` up on each
    retry, so a hash of the raw body would make every retry a new event. The id
    hashes the events without that field. Known shortcoming: the batch is one
    event in the ledger, and a retry that regroups the events is not recognised;
    splitting a batch into its events is not built.
    """
    if not (isinstance(payload, list) and payload):
        return None
    if not all(isinstance(event, dict) and "eventId" in event for event in payload):
        return None
    events = [
        {key: value for key, value in event.items() if key != "attemptNumber"}
        for event in payload
    ]
    canonical = json.dumps(events, sort_keys=True, separators=(",", ":"))
    return "hubspot-batch:" + hashlib.sha256(canonical.encode()).hexdigest()


def _hubspot_type(headers: Mapping[str, str], payload: Any) -> str | None:
    """The batch's subscriptionType when its events share one (contact.creation)."""
    if not isinstance(payload, list):
        return None
    kinds = {
        event.get("subscriptionType") for event in payload if isinstance(event, dict)
    }
    return _text(kinds.pop()) if len(kinds) == 1 else None


def _slack_type(headers: Mapping[str, str], payload: Any) -> str | None:
    return _field("event", "type")(headers, payload) or _field("type")(headers, payload)


_STANDARD = (_header("webhook-id", "svix-id"), _field("type"), "header webhook-id")
_GENERIC = (_header("webhook-id"), _field("type"), "header webhook-id")
_GITHUB = (_header("x-github-delivery"), _github_type, "header X-GitHub-Delivery")
_EVENT_ID = (_field("event_id"), _field("type"), "body event_id")
_TWILIO = (
    _header("i-twilio-idempotency-token"),
    _field("MessageStatus"),
    "header I-Twilio-Idempotency-Token",
)

_HUBSPOT = (_hubspot_batch_id, _hubspot_type, "body events (attemptNumber aside)")

#: Providers whose webhooks may be form-encoded rather than JSON: Twilio always,
#: GitHub when a hook's content type is set to form (the JSON in ``payload=``),
#: Slack for slash commands and interactivity (``command=``, ``payload=``).
_FORM_SENDERS = frozenset({"twilio", "github", "github-sha1", "slack"})

_RULES: dict[str, tuple[_Rule, _Rule, str]] = {
    "standard-webhooks": _STANDARD,
    "svix": _STANDARD,
    "stripe": (_field("id"), _field("type"), "body id"),
    "github": _GITHUB,
    "github-sha1": _GITHUB,
    "shopify": (
        _header("x-shopify-event-id", "x-shopify-webhook-id"),
        _header("x-shopify-topic"),
        "header X-Shopify-Event-Id or X-Shopify-Webhook-Id",
    ),
    "slack": (_field("event_id"), _slack_type, "body event_id"),
    "square": _EVENT_ID,
    "paddle": (_field("event_id"), _field("event_type"), "body event_id"),
    "twilio": _TWILIO,
    "twilio-json": _TWILIO,
    # Zendesk docs, "Webhook event types": an event-subscribed webhook's body carries
    # the event's "id" and "type"; a trigger's custom body falls back to the hash.
    "zendesk": (_field("id"), _field("type"), "body id"),
    "hubspot": _HUBSPOT,
    "hubspot-v1": _HUBSPOT,
    "hubspot-v2": _HUBSPOT,
}
