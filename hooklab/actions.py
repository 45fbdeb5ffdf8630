"""What a workflow does with an event: built-in actions and Python callables.

An action is any callable that takes an ``Event`` and returns when its effect is
done; raising means the attempt failed and will be retried. ``load_action`` turns
the engagement's ``run`` text into one:

- ``record``: log the event as handled (the ledger already holds it);
- ``forward <url>``: POST the raw body to ``url`` with an ``Idempotency-Key``
  header, failing on anything but a 2xx answer;
- ``package.module:function``: import and call ``function(event)``.

Every action receives the same ``Event.idempotency_key`` on every attempt and on
every replay, so a target that honours it applies the effect once.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from hooklab.errors import ApiError, ConfigError

__all__ = [
    "Action",
    "Event",
    "ForwardError",
    "forward",
    "header_safe",
    "load_action",
    "record",
]

logger = logging.getLogger(__name__)

FORWARD_TIMEOUT_S = 10.0

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ForwardError(ApiError):
    """A forwarded event was not accepted by its target."""


@dataclass(frozen=True)
class Event:
    """One stored event, as an action sees it on one attempt.

    ``payload`` is the decoded body (a dict for JSON objects), ``attempt`` counts
    from 1 and ``idempotency_key`` is the same on every attempt and replay.
    """

    source: str
    event_id: str
    event_type: str | None
    payload: Any
    body: bytes
    received_at: float
    attempt: int = 1
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """``source:event_id``: the event's identity, stable across retries."""
        return f"{self.source}:{self.event_id}"


Action = Callable[[Event], object]


def load_action(spec: str) -> Action:
    """Turn ``record``, ``forward <url>`` or ``module:function`` into an action."""
    text = spec.strip()
    if text == "record":
        return record
    if text.startswith("forward "):
        return _forwarder(text.removeprefix("forward ").strip())
    if _CALLABLE.match(text):
        return _import(text)

    raise ConfigError(
        f"The action {spec!r} is not one of: record, forward <url>, "
        "package.module:function."
    )


def record(event: Event) -> None:
    """Log the event as handled; the ledger already keeps its body and state."""
    logger.info(
        "action.recorded",
        extra={
            "source": event.source,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "idempotency_key": event.idempotency_key,
        },
    )


def header_safe(text: str) -> str:
    """``text`` as an HTTP header value: printable ASCII as it is, anything else
    percent-encoded as UTF-8 (RFC 3986), so "evt_é" travels as "evt_%C3%A9".

    A "%" is encoded too, so two different ids never travel as the same key.
    """
    if text.isascii() and text.isprintable() and "%" not in text:
        return text
    return quote(text, safe="".join(chr(c) for c in range(0x21, 0x7F) if c != 0x25))


def forward(
    event: Event, url: str, *, client: httpx.Client | None = None
) -> httpx.Response:
    """POST the event's raw body to ``url``; raise ForwardError unless 2xx."""
    headers = {
        "content-type": event.headers.get("content-type", "application/json"),
        "idempotency-key": header_safe(event.idempotency_key),
        "x-hooklab-source": header_safe(event.source),
        "x-hooklab-event-id": header_safe(event.event_id),
    }

    try:
        if client is None:
            response = httpx.post(
                url, content=event.body, headers=headers, timeout=FORWARD_TIMEOUT_S
            )
        else:
            response = client.post(url, content=event.body, headers=headers)
    except httpx.HTTPError as exc:
        raise ForwardError(
            f"Forwarding to {url} failed: {type(exc).__name__}."
        ) from exc

    if not response.is_success:
        raise ForwardError(
            f"Forwarding to {url} was answered {response.status_code}; expected 2xx."
        )
    return response


def _forwarder(url: str) -> Action:
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise ConfigError(
            f"The action 'forward {url}' needs one http:// or https:// URL, "
            "with no spaces."
        )

    def forward_to(event: Event) -> None:
        forward(event, url)

    forward_to.__name__ = f"forward {url}"
    return forward_to


def _import(spec: str) -> Action:
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"The action {spec!r} names module {module_name!r}, which cannot be "
            f"imported: {exc}."
        ) from exc

    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(
            f"The action {spec!r}: module {module_name!r} has no function {name!r}."
        )
    return _late_bound(module, name)


def _late_bound(module: Any, name: str) -> Action:
    """Call ``module.name`` as it is at call time, so a fixed handler is picked up."""

    def call(event: Event) -> object:
        return getattr(module, name)(event)

    call.__name__ = f"{module.__name__}:{name}"
    return call
