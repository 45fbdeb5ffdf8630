"""Tests for hooklab.ledger against a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hooklab.errors import LedgerError
from hooklab.ledger import SqliteLedger, storable_headers

HEADERS = {
    "Content-Type": "application/json",
    "webhook-id": "msg_1",
    "webhook-signature": "v1,c2lnbmF0dXJl",
}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path / "ledger.db") as opened:
        yield opened


def test_record_first_delivery_is_new_and_stored(ledger: SqliteLedger) -> None:
    recorded = ledger.record("shop", "evt_1", "order.created", b"{}", HEADERS)

    assert recorded.new
    [stored] = ledger.deliveries()
    assert (stored.source, stored.event_id, stored.event_type) == (
        "shop",
        "evt_1",
        "order.created",
    )
    assert stored.body == b"{}"
    assert stored.received_at == recorded.received_at


def test_record_repeat_keeps_first_copy(ledger: SqliteLedger) -> None:
    first = ledger.record("shop", "evt_1", "order.created", b"first", HEADERS)

    again = ledger.record("shop", "evt_1", "order.created", b"second", HEADERS)

    assert not again.new
    assert again.received_at == first.received_at
    [stored] = ledger.deliveries()
    assert stored.body == b"first"
    assert stored.repeats == 1


def test_record_same_id_other_source_is_new(ledger: SqliteLedger) -> None:
    ledger.record("shop", "evt_1", None, b"{}", {})

    assert ledger.record("billing", "evt_1", None, b"{}", {}).new
    assert ledger.count() == 2
    assert [d.source for d in ledger.deliveries("billing")] == ["billing"]


@pytest.mark.parametrize(
    "name",
    [
        "webhook-signature",
        "Stripe-Signature",
        "X-Hub-Signature-256",
        "x-hub-signature",
        "X-Shopify-Hmac-Sha256",
        "X-Twilio-Signature",
    ],
)
def test_storable_headers_signature_header_is_dropped(name: str) -> None:
    kept = storable_headers({name: "secret-looking", "X-Request-Id": "r1"})

    assert kept == {"x-request-id": "r1"}


def test_record_headers_are_stored_without_signature(ledger: SqliteLedger) -> None:
    ledger.record("shop", "evt_1", None, b"{}", HEADERS)

    [stored] = ledger.deliveries()

    assert stored.headers == {"content-type": "application/json", "webhook-id": "msg_1"}
    raw = ledger.path.read_bytes() + _wal_bytes(ledger.path)
    assert b"c2lnbmF0dXJl" not in raw


def _wal_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_reopen_file_keeps_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as first:
        first.record("shop", "evt_1", "order.created", b"{}", {})

    with SqliteLedger(path) as reopened:
        assert reopened.count() == 1
        assert not reopened.record("shop", "evt_1", None, b"{}", {}).new


def test_open_file_uses_wal_journal(ledger: SqliteLedger) -> None:
    conn = sqlite3.connect(ledger.path)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    finally:
        conn.close()

    assert mode == "wal"


def test_record_concurrent_same_id_exactly_one_new(ledger: SqliteLedger) -> None:
    """Sixteen threads racing to store one id: one wins, fifteen see a repeat."""
    barrier = threading.Barrier(16)
    outcomes: list[bool] = []

    def deliver() -> None:
        barrier.wait()
        outcomes.append(ledger.record("shop", "evt_race", None, b"{}", {}).new)

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False] * 15 + [True]
    assert ledger.count() == 1
    assert ledger.deliveries()[0].repeats == 15


def test_record_after_close_raises_ledger_error(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.close()

    with pytest.raises(LedgerError, match="closed"):
        ledger.record("shop", "evt_1", None, b"{}", {})


def test_open_unwritable_path_raises_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot be opened"):
        SqliteLedger(tmp_path / "missing-dir" / "ledger.db")
