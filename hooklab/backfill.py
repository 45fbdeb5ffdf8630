"""The hybrid's safety net: find the events the webhooks missed, and enrich events.

``reconcile`` lists the provider's events created since a time through its API,
finds those the ledger lacks, and records them exactly as the receiver would: the
same source and the same provider event id. From there they take the same path as
a webhook: the workers (``hooklab.processing``) claim and process them with the
same idempotency key, and a webhook copy arriving later is a duplicate, as is a
backfilled copy of an event a webhook already brought. Nothing runs twice.

``enrich`` wraps a workflow action so it first fetches the event's full object
through the API (a thin webhook names the object; the API has all of it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hooklab.actions import Action, Event
from hooklab.api import Client, Cursor, Paginator
from hooklab.errors import ApiError, ConfigError
from hooklab.events import MAX_ID_CHARS
from hooklab.ledger import Incoming, Ledger

__all__ = [
    "ORIGIN_HEADER",
    "BackfillError",
    "BackfillReport",
    "enrich",
    "event_json",
    "reconcile",
]

logger = logging.getLogger(__name__)

#: Stored with every backfilled delivery, so the ledger says where it came from.
ORIGIN_HEADER = "x-hooklab-origin"


class BackfillError(ApiError):
    """An event listed by the API cannot be backfilled (it has no usable id)."""


@dataclass(frozen=True)
class BackfillReport:
    """What one reconciliation found: listed, already known and recovered events.

    ``recovered_ids`` are the events the ledger lacked, now recorded and pending.
    """

    source: str
    since: float
    listed: int
    already_known: int
    recovered: int
    pages: int
    recovered_ids: tuple[str, ...] = ()


def event_json(event: Mapping[str, Any]) -> bytes:
    """The default body of a backfilled event: the object the API listed, as JSON."""
    return json.dumps(event, separators=(",", ":")).encode()


def reconcile(
    client: Client,
    ledger: Ledger,
    since: float,
    *,
    source: str,
    route: str = "/v1/events",
    style: Paginator | None = None,
    since_param: str = "created_since",
    to_body: Callable[[Mapping[str, Any]], bytes] = event_json,
    id_field: str = "id",
    type_field: str = "type",
    on_recorded: Callable[[], None] | None = None,
) -> BackfillReport:
    """Record every event created since ``since`` (unix time) that the ledger lacks.

    ``source`` must be the receiver's name for this provider, so both paths share
    one identity per event. ``to_body`` builds the stored body from a listed event;
    pass the provider's webhook body builder when actions expect the webhook's
    shape. Each page is recorded before the next is fetched, and ``on_recorded``
    (e.g. ``Processor.wake``) is called after a page brought new events. A page
    that fails raises after its retries; what earlier pages recorded stays.
    """
    walk = _Walk(ledger, source, to_body, id_field, type_field)
    params = {since_param: repr(float(since))}

    for page in client.iter_pages(route, style=style or Cursor(), params=params):
        if walk.take(page) and on_recorded is not None:
            on_recorded()

    report = walk.report(since)
    logger.info(
        "backfill.done",
        extra={
            "source": source,
            "listed": report.listed,
            "recovered": report.recovered,
            "pages": report.pages,
        },
    )
    return report


def enrich(
    action: Action,
    client: Client,
    route: str = "/v1/{object}s/{id}",
    *,
    fields: Mapping[str, str] | None = None,
    into: str = "object",
) -> Action:
    """Wrap ``action`` so it first fetches the event's full object through the API.

    ``route`` holds placeholders filled from the payload: by default ``{object}``
    from ``data.object`` and ``{id}`` from ``data.id`` (``fields`` maps each name
    to a dotted path). The action then sees the payload with the fetched object
    under ``into``. A failed fetch raises, so the event is retried like any action.
    """
    paths = dict(fields or {"object": "data.object", "id": "data.id"})

    def enriched(event: Event) -> object:
        values = {name: _dig(event.payload, path) for name, path in paths.items()}
        missing = sorted(name for name, value in values.items() if value is None)
        if missing or not isinstance(event.payload, dict):
            raise ConfigError(
                f"Event {event.event_id} cannot be enriched: its payload has no "
                f"{', '.join(paths[m] for m in missing) or 'JSON object'} to fill "
                f"{route}."
            )

        full = client.get_json(
            route, path_params={k: str(v) for k, v in values.items()}
        )
        payload = {**event.payload, into: full}
        return action(dataclasses.replace(event, payload=payload))

    enriched.__name__ = f"enrich({getattr(action, '__name__', 'action')})"
    return enriched


class _Walk:
    """What a reconciliation has seen so far, page by page."""

    def __init__(
        self,
        ledger: Ledger,
        source: str,
        to_body: Callable[[Mapping[str, Any]], bytes],
        id_field: str,
        type_field: str,
    ) -> None:
        self.ledger = ledger
        self.source = source
        self.to_body = to_body
        self.id_field = id_field
        self.type_field = type_field
        self.listed = 0
        self.known = 0
        self.pages = 0
        self.recovered: list[str] = []

    def take(self, page: Sequence[Mapping[str, Any]]) -> bool:
        """Record the page's unknown events; say whether any was new."""
        self.pages += 1
        self.listed += len(page)
        unknown = [event for event in page if not self._known(event)]
        self.known += len(page) - len(unknown)
        if not unknown:
            return False

        outcomes = self.ledger.record_many([self._incoming(e) for e in unknown])
        new = [
            self._id(event)
            for event, outcome in zip(unknown, outcomes, strict=True)
            if outcome.new
        ]
        # A webhook may land between the check and the write: then it is the
        # first copy, and this one only counts as a repeat in the ledger.
        self.known += len(unknown) - len(new)
        self.recovered += new
        for event_id in new:
            logger.warning(
                "backfill.recovered",
                extra={"source": self.source, "event_id": event_id},
            )
        return bool(new)

    def report(self, since: float) -> BackfillReport:
        """The totals so far."""
        return BackfillReport(
            source=self.source,
            since=since,
            listed=self.listed,
            already_known=self.known,
            recovered=len(self.recovered),
            pages=self.pages,
            recovered_ids=tuple(self.recovered),
        )

    def _known(self, event: Mapping[str, Any]) -> bool:
        return self.ledger.delivery(self.source, self._id(event)) is not None

    def _id(self, event: Mapping[str, Any]) -> str:
        value = event.get(self.id_field)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise BackfillError(
                f"An event listed for source {self.source!r} has no usable "
                f'"{self.id_field}" (a string or number); it cannot be matched '
                "with its webhook, so the backfill stopped there."
            )
        if len(str(value)) > MAX_ID_CHARS:
            raise BackfillError(
                f"An event listed for source {self.source!r} has an id of "
                f"{len(str(value)):,} characters; the receiver keys a webhook whose "
                f"id is over {MAX_ID_CHARS} by its content instead, so the two could "
                "not be matched, and the backfill stopped there."
            )
        return str(value)

    def _incoming(self, event: Mapping[str, Any]) -> Incoming:
        event_id = self._id(event)
        kind = event.get(self.type_field)
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            ORIGIN_HEADER: "backfill",
        }
        return Incoming(
            source=self.source,
            event_id=event_id,
            event_type=kind if isinstance(kind, str) else None,
            body=self.to_body(event),
            headers=headers,
        )


def _dig(payload: Any, path: str) -> Any:
    node = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
