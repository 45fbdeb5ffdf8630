"""Tests for hooklab.ledger against a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hooklab.errors import ConfigError, LedgerError
from hooklab.ledger import (
    STATUSES,
    Incoming,
    SqliteLedger,
    check_ledger_file,
    storable_headers,
)

HEADERS = {
    "Content-Type": "application/json",
    "webhook-id": "msg_1",
    "webhook-signature": "v1,c2lnbmF0dXJl",
}
NOW = 1_750_000_000.0


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path / "ledger.db", clock=lambda: NOW) as opened:
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
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "X-Api-Key",
        "X-Webhook-Secret",
        "X-Basic-Password",
        "X-Gitlab-Token",
        "X-Auth-Token",
        "Apikey",
        "X-Apikey",
        "X-Shopify-Access-Token",
        "X-Amz-Security-Token",
        "Set-Cookie",
    ],
)
def test_storable_headers_signature_or_credential_header_is_dropped(name: str) -> None:
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


def _store(ledger: SqliteLedger, *ids: str, source: str = "shop") -> None:
    ledger.record_many([Incoming(source, i, "order.created", b"{}", {}) for i in ids])


def test_record_many_one_commit_for_whole_batch(ledger: SqliteLedger) -> None:
    before = ledger.commits

    _store(ledger, "evt_1", "evt_2", "evt_3")

    assert ledger.commits == before + 1
    assert ledger.count() == 3


def _fsynced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Note the file behind every fsync from now on (the fsync still happens)."""
    paths: list[str] = []
    real_fsync = os.fsync

    def noting(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr("hooklab.ledger.os.fsync", noting)
    return paths


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_every_write_syncs_the_wal_before_it_returns(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits do not fsync (synchronous=NORMAL); the ledger fsyncs the WAL itself."""
    fsynced = _fsynced_paths(monkeypatch)
    wal = str((ledger.path.parent / "ledger.db-wal").resolve())

    _store(ledger, "evt_1", "evt_2")
    assert fsynced == [wal]
    ledger.requeue([("shop", "evt_1")], now=NOW)
    assert fsynced == [wal, wal]

    # write_many only commits; the group committer calls sync once for many.
    ledger.write_many([Incoming("shop", "evt_3", None, b"{}", {})])
    assert fsynced == [wal, wal]
    ledger.sync()
    assert fsynced == [wal, wal, wal]


def test_write_many_without_wait_gives_way_to_another_writer(
    ledger: SqliteLedger,
) -> None:
    other = sqlite3.connect(ledger.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    item = Incoming("shop", "evt_1", None, b"{}", {})

    started = time.monotonic()
    assert ledger.write_many([item], wait=False) is None
    assert time.monotonic() - started < 1  # no wait for the lock (LOCK_WAIT_S is 5)

    other.execute("COMMIT")
    other.close()
    assert ledger.count() == 0  # nothing was written
    outcomes = ledger.write_many([item], wait=False)
    assert outcomes is not None and outcomes[0].new


def test_sync_after_close_is_a_ledger_error(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.close()

    with pytest.raises(LedgerError, match="closed"):
        ledger.sync()


def test_record_many_same_id_twice_in_batch_is_new_then_repeat(
    ledger: SqliteLedger,
) -> None:
    item = Incoming("shop", "evt_1", None, b"{}", {})

    outcomes = ledger.record_many([item, item])

    assert [o.new for o in outcomes] == [True, False]
    assert ledger.stats()["pending"] == 1


def test_record_quarantined_is_stored_but_never_claimed(ledger: SqliteLedger) -> None:
    ledger.record("shop", "evt_q", None, b"\xff", {}, quarantine="not UTF-8")

    assert ledger.claim("w", now=NOW + 60, lease_s=5) == []
    [state] = ledger.events()
    assert (state.status, state.note) == ("quarantined", "not UTF-8")


def test_claim_due_event_leases_it_once(ledger: SqliteLedger) -> None:
    _store(ledger, "evt_1")

    [claim] = ledger.claim("w1", now=NOW + 1, lease_s=30)

    assert (claim.key, claim.attempt, claim.worker) == (("shop", "evt_1"), 1, "w1")
    assert ledger.claim("w2", now=NOW + 2, lease_s=30) == []
    assert ledger.stats()["processing"] == 1


def test_claim_expired_lease_is_taken_again_as_next_attempt(
    ledger: SqliteLedger,
) -> None:
    _store(ledger, "evt_1")
    [first] = ledger.claim("dead-worker", now=NOW + 1, lease_s=30)

    [again] = ledger.claim("w2", now=NOW + 31, lease_s=30)

    assert (again.worker, again.attempt) == ("w2", 2)
    assert not ledger.finish(first, now=NOW + 32)
    assert ledger.finish(again, now=NOW + 32)
    assert ledger.stats()["done"] == 1


def test_fail_with_retry_time_waits_until_then(ledger: SqliteLedger) -> None:
    _store(ledger, "evt_1")
    [claim] = ledger.claim("w", now=NOW + 1, lease_s=30)

    assert ledger.fail(claim, now=NOW + 2, error="boom", retry_at=NOW + 10)

    assert ledger.claim("w", now=NOW + 9, lease_s=30) == []
    assert ledger.next_due() == NOW + 10
    [retry] = ledger.claim("w", now=NOW + 10, lease_s=30)
    assert retry.attempt == 2
    [state] = ledger.events()
    assert (state.status, state.last_error) == ("processing", "boom")


def test_fail_without_retry_buries_then_requeue_revives(ledger: SqliteLedger) -> None:
    _store(ledger, "evt_1")
    [claim] = ledger.claim("w", now=NOW + 1, lease_s=30)
    ledger.fail(claim, now=NOW + 2, error="always", retry_at=None)
    assert [e.event_id for e in ledger.events(status="dead")] == ["evt_1"]

    assert ledger.requeue([("shop", "evt_1")], now=NOW + 3) == 1

    [again] = ledger.claim("w", now=NOW + 3, lease_s=30)
    assert again.attempt == 1
    assert again.delivery.event_id == "evt_1"


def test_stats_lists_every_status(ledger: SqliteLedger) -> None:
    _store(ledger, "evt_1", "evt_2")

    stats = ledger.stats()

    assert set(stats) == set(STATUSES)
    assert (stats["pending"], stats["dead"]) == (2, 0)


def test_events_filters_by_status_since_and_id(ledger: SqliteLedger) -> None:
    _store(ledger, "evt_1", "evt_2")
    [claim] = ledger.claim("w", now=NOW + 1, lease_s=30, limit=1)
    ledger.finish(claim, now=NOW + 2)

    assert [e.event_id for e in ledger.events(status="done")] == ["evt_1"]
    assert [e.event_id for e in ledger.events(event_id="evt_2")] == ["evt_2"]
    assert ledger.events(since=NOW * 10) == []


@pytest.mark.parametrize(
    ("applied", "incoming", "accepted"),
    [
        (2, 1, False),
        (2, 2, True),
        (2, 10, True),
        ("2024-05-01T10:00:00Z", "2024-05-01T09:59:59+00:00", False),
        ("2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", True),
        ("v2", "v1", False),
    ],
    ids=["older-int", "equal", "newer-int", "older-time", "same-instant", "text"],
)
def test_advance_version_refuses_only_older(
    ledger: SqliteLedger, applied: object, incoming: object, accepted: bool
) -> None:
    assert ledger.advance_version("wf", "order_1", applied)

    assert ledger.advance_version("wf", "order_1", incoming) is accepted


def test_advance_version_other_object_is_independent(ledger: SqliteLedger) -> None:
    ledger.advance_version("wf", "order_1", 5)

    assert ledger.advance_version("wf", "order_2", 1)
    assert ledger.advance_version("other-wf", "order_1", 1)


def test_open_issue2_ledger_queues_its_deliveries(tmp_path: Path) -> None:
    """A ledger written before processing state existed gets pending events."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE deliveries (source TEXT NOT NULL, event_id TEXT NOT NULL,"
        " event_type TEXT, received_at REAL NOT NULL, body BLOB NOT NULL,"
        " headers TEXT NOT NULL, repeats INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (source, event_id))"
    )
    conn.execute(
        "INSERT INTO deliveries VALUES ('shop', 'e1', NULL, 1.0, x'7b7d', '{}', 0)"
    )
    conn.commit()
    conn.close()

    with SqliteLedger(path) as opened:
        assert opened.stats()["pending"] == 1


def test_background_checkpoint_copies_wal_into_database(tmp_path: Path) -> None:
    """Commits never checkpoint; the ledger's own thread does, soon after."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path, checkpoint_every_s=0.02) as ledger:
        empty = path.stat().st_size
        _store(ledger, *[f"evt_{n}" for n in range(200)])

        deadline = time.monotonic() + 5
        while path.stat().st_size <= empty and time.monotonic() < deadline:
            time.sleep(0.01)

        assert path.stat().st_size > empty


def _write_without_pause(path: Path, wal_limit_bytes: int) -> tuple[int, int, int]:
    """Commit 20-row batches back to back for a second; return the peak and final
    WAL sizes and how many rows a reopened ledger holds."""
    wal = Path(f"{path}-wal")
    body = b"x" * 2000
    written = peak = 0

    with SqliteLedger(
        path, checkpoint_every_s=0.02, wal_limit_bytes=wal_limit_bytes
    ) as ledger:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            batch = [Incoming("s", f"e{written + k}", "t", body, {}) for k in range(20)]
            ledger.record_many(batch)
            written += 20
            peak = max(peak, wal.stat().st_size)
        final = wal.stat().st_size

    with SqliteLedger(path) as reopened:
        assert reopened.count() == written
    return peak, final, written


def test_wal_stays_bounded_under_writes_without_pause(tmp_path: Path) -> None:
    """A passive checkpoint alone lets the WAL grow for as long as writes never
    pause; over the limit, the ledger starts it over and loses nothing."""
    limit = 256 * 1024
    _, unbounded, _ = _write_without_pause(tmp_path / "unbounded.db", 10**12)
    peak, _, written = _write_without_pause(tmp_path / "bounded.db", limit)

    assert unbounded > 8 * limit, "the scenario did not make the WAL grow"
    assert peak < unbounded / 3
    assert written > 1000


def test_unstorable_value_is_a_per_item_ledger_error(ledger: SqliteLedger) -> None:
    item = Incoming("s", "evt_1", "\udfff", b"{}", {})

    with pytest.raises(LedgerError) as caught:
        ledger.record_many([item])

    assert caught.value.per_item is True
    assert ledger.count() == 0


def test_locked_ledger_is_not_a_per_item_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hooklab.ledger.LOCK_WAIT_S", 0.1)
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(LedgerError, match="locked") as caught:
                ledger.record_many([Incoming("s", "evt_1", "t", b"{}", {})])
            assert time.monotonic() - started < 2
        finally:
            other.execute("ROLLBACK")
            other.close()

        assert caught.value.per_item is False


def test_storable_headers_keep_idempotency_ids() -> None:
    """Twilio's event id travels in a header whose name says token."""
    kept = storable_headers({"I-Twilio-Idempotency-Token": "id-1", "Host": "h"})

    assert kept == {"i-twilio-idempotency-token": "id-1", "host": "h"}


def test_claim_among_takes_only_the_chosen_due_events(ledger: SqliteLedger) -> None:
    ledger.record_many(
        [Incoming("shop", f"e{n}", "order.created", b"{}", {}) for n in range(4)]
    )

    claims = ledger.claim(
        "w", now=1e10, lease_s=5, limit=10, among=[("shop", "e1"), ("shop", "e3")]
    )
    nothing = ledger.claim("w", now=1e10, lease_s=5, limit=10, among=[])

    assert sorted(c.delivery.event_id for c in claims) == ["e1", "e3"]
    assert nothing == []
    assert ledger.stats()["pending"] == 2


def test_release_hands_back_only_that_workers_claims(ledger: SqliteLedger) -> None:
    ledger.record_many(
        [Incoming("shop", f"e{n}", "order.created", b"{}", {}) for n in range(3)]
    )
    mine = ledger.claim("me", now=1e10, lease_s=30, limit=2)
    theirs = ledger.claim("them", now=1e10, lease_s=30, limit=1)

    released = ledger.release("me", now=1e10)

    assert (len(mine), len(theirs), released) == (2, 1, 2)
    states = {s.event_id: (s.status, s.attempts) for s in ledger.events()}
    assert sorted(states.values()) == [
        ("pending", 0),
        ("pending", 0),
        ("processing", 1),
    ]


def test_iter_events_pages_through_in_arrival_order(ledger: SqliteLedger) -> None:
    ledger.record_many(
        [Incoming("shop", f"e{n}", "order.created", b"{}", {}) for n in range(25)]
    )
    [claim] = ledger.claim("w", now=1e10, lease_s=5, limit=1)
    ledger.finish(claim, now=1e10)

    every = [s.event_id for s in ledger.iter_events(page=10)]
    done = [s.event_id for s in ledger.iter_events(status="done", page=10)]

    assert every == [s.event_id for s in ledger.events()]
    assert len(every) == 25 and done == [claim.delivery.event_id]


def test_storable_headers_keep_when_a_delivery_was_signed_not_the_signature() -> None:
    """Zendesk's timestamp header has 'signature' in its name but holds a time."""
    kept = storable_headers(
        {
            "X-Zendesk-Webhook-Signature": "c2lnbmF0dXJl",
            "X-Zendesk-Webhook-Signature-Timestamp": "2021-03-25T05:09:27Z",
        }
    )

    assert kept == {"x-zendesk-webhook-signature-timestamp": "2021-03-25T05:09:27Z"}


def test_check_ledger_file_a_name_too_long_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be used as a ledger: File name too"):
        check_ledger_file(tmp_path / ("l" * 300 + ".db"))


def test_check_ledger_file_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder .*nodir/sub for the ledger"):
        check_ledger_file(tmp_path / "nodir" / "sub" / "x.db")
