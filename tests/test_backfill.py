"""Tests for hooklab.backfill: reconcile through the same path as webhooks, enrich."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hooklab.actions import Event
from hooklab.api import ApiRequestError, Client, Cursor
from hooklab.backfill import (
    ORIGIN_HEADER,
    BackfillError,
    enrich,
    event_json,
    reconcile,
)
from hooklab.errors import ConfigError
from hooklab.ledger import SqliteLedger
from hooklab.mockprovider import MockProvider, webhook_body
from hooklab.processing import Pipeline, Processor
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier

SECRET = "whsec_" + base64.b64encode(b"backfill-test-key-0123456789").decode()
SOURCE = "shop"


class Effects:
    """A workflow action that counts each event's effect by its idempotency key."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.payloads: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.counts[event.idempotency_key] += 1
            self.payloads.append(event.payload)


@dataclass
class Rig:
    """A provider and a receiver on loopback, sharing one ledger."""

    provider: MockProvider
    ledger: SqliteLedger
    api_url: str

    def emit(self, events: list[dict[str, object]]) -> None:
        """Deliver ``events`` as webhooks, each once, all landing."""
        asyncio.run(self.provider.emit(events))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    provider = MockProvider(webhook_secret=SECRET)
    ledger = SqliteLedger(tmp_path / "ledger.db")
    receiver = create_app(
        {SOURCE: Source(SOURCE, Verifier("standard-webhooks", SECRET))}, ledger
    )

    with serve_in_thread(receiver) as hooks, serve_in_thread(provider.app) as api:
        provider.webhook_url = f"{hooks.url}/hooks/{SOURCE}"
        yield Rig(provider, ledger, api.url)
    ledger.close()


def _orders(provider: MockProvider, count: int) -> list[dict[str, object]]:
    for number in range(count):
        provider.create_order({"total": number})
    return provider.events


def test_reconcile_recovers_missed_events_and_late_webhooks_are_duplicates(
    rig: Rig,
) -> None:
    """Webhooks bring 6 of 10 events; the backfill records the other 4; the 4
    webhooks arriving late are duplicates; every event runs exactly once."""
    events = _orders(rig.provider, 10)
    rig.emit(events[:6])

    with Client(rig.api_url) as client:
        report = reconcile(
            client,
            rig.ledger,
            0.0,
            source=SOURCE,
            style=Cursor(limit=3),
            to_body=webhook_body,
        )
    rig.emit(events[6:])
    effects = Effects()
    Processor(rig.ledger, [Pipeline("p", SOURCE, (effects,))]).run_until_idle()

    missed = [str(e["id"]) for e in events[6:]]
    assert (report.listed, report.already_known, report.recovered) == (10, 6, 4)
    assert report.pages == 4 and list(report.recovered_ids) == missed
    assert [d.repeats for d in rig.ledger.deliveries()] == [0] * 6 + [1] * 4
    assert effects.counts == Counter({f"{SOURCE}:{e['id']}": 1 for e in events})


def test_reconcile_body_and_headers_match_the_webhook_path(rig: Rig) -> None:
    [event] = _orders(rig.provider, 1)

    with Client(rig.api_url) as client:
        reconcile(client, rig.ledger, 0.0, source=SOURCE, to_body=webhook_body)

    stored = rig.ledger.delivery(SOURCE, str(event["id"]))
    assert stored is not None
    assert stored.body == webhook_body(event)
    assert stored.event_type == "order.created"
    assert stored.headers[ORIGIN_HEADER] == "backfill"


def test_reconcile_twice_recovers_nothing_the_second_time(rig: Rig) -> None:
    _orders(rig.provider, 4)

    with Client(rig.api_url) as client:
        first = reconcile(client, rig.ledger, 0.0, source=SOURCE)
        second = reconcile(client, rig.ledger, 0.0, source=SOURCE)

    assert (first.recovered, second.recovered, second.already_known) == (4, 0, 4)
    assert rig.ledger.count() == 4
    stored = rig.ledger.delivery(SOURCE, "evt_00000001")
    assert stored is not None and stored.body == event_json(rig.provider.events[0])


def test_reconcile_since_skips_older_events(rig: Rig) -> None:
    events = _orders(rig.provider, 3)

    with Client(rig.api_url) as client:
        report = reconcile(
            client,
            rig.ledger,
            float(events[1]["created"]),
            source=SOURCE,  # type: ignore[arg-type]
        )

    assert report.recovered_ids == (events[1]["id"], events[2]["id"])


def test_reconcile_failed_page_raises_and_keeps_earlier_pages(rig: Rig) -> None:
    """A page that fails after its retries raises; the pages before stay recorded."""
    _orders(rig.provider, 5)
    rig.provider.inject(None)
    rig.provider.inject(503, count=4)

    with (
        Client(rig.api_url, sleep=lambda s: None) as client,
        pytest.raises(ApiRequestError, match="HTTP 503 after 4 attempts") as caught,
    ):
        reconcile(client, rig.ledger, 0.0, source=SOURCE, style=Cursor(limit=2))

    assert caught.value.request.url.params["starting_after"] == "evt_00000002"
    assert [d.event_id for d in rig.ledger.deliveries()] == [
        "evt_00000001",
        "evt_00000002",
    ]


def test_reconcile_event_without_id_raises_backfill_error(rig: Rig) -> None:
    rig.provider.inject(200, body=b'{"data": [{"type": "x"}], "has_more": false}')

    with (
        Client(rig.api_url) as client,
        pytest.raises(BackfillError, match='no usable "id"'),
    ):
        reconcile(client, rig.ledger, 0.0, source=SOURCE)


def test_reconcile_id_longer_than_the_receiver_keys_raises(rig: Rig) -> None:
    """The receiver keys such a webhook by its content: the two would never match."""
    long_id = "evt_" + "x" * 300
    page = {"data": [{"id": long_id, "type": "x"}], "has_more": False}
    rig.provider.inject(200, body=json.dumps(page).encode())

    with (
        Client(rig.api_url) as client,
        pytest.raises(BackfillError, match="an id of 304 characters"),
    ):
        reconcile(client, rig.ledger, 0.0, source=SOURCE)
    assert rig.ledger.count() == 0


def test_enrich_gives_the_action_the_full_object(rig: Rig) -> None:
    rig.provider.create_order({"total": 42, "customer": "Example Customer"})
    effects = Effects()

    with Client(rig.api_url) as client:
        reconcile(client, rig.ledger, 0.0, source=SOURCE, to_body=webhook_body)
        pipeline = Pipeline("p", SOURCE, (enrich(effects, client),))
        Processor(rig.ledger, [pipeline]).run_until_idle()
        routes = [call.route for call in client.calls]

    [payload] = effects.payloads
    assert isinstance(payload, dict)
    assert payload["data"] == {"object": "order", "id": "ord_00000001"}
    assert payload["object"]["customer"] == "Example Customer"
    assert routes == ["/v1/events", "/v1/{object}s/{id}"]


def test_enrich_payload_without_the_named_field_is_config_error() -> None:
    event = Event("shop", "evt_1", "t", {"data": {}}, b"{}", 0.0)
    client = Client("http://127.0.0.1:9")

    with pytest.raises(ConfigError, match="no data.id, data.object to fill"):
        enrich(Effects(), client)(event)
    client.close()
