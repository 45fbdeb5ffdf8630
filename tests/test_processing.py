"""Tests for hooklab.processing: workers, retries, dead letters, leases, ordering."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hooklab.actions import Event
from hooklab.errors import ConfigError, LedgerError
from hooklab.ledger import Incoming, SqliteLedger
from hooklab.processing import Ordering, Pipeline, Processor, RetryPolicy
from hooklab.replay import choose, requeue

START = 1_750_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Handler:
    """An action that fails ``failures`` times, then records each call."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, int]] = []
        self.effects: list[str] = []

    def __call__(self, event: Event) -> None:
        self.calls.append((event.idempotency_key, event.attempt))
        if self.failures:
            self.failures -= 1
            raise RuntimeError(f"downstream said no ({self.failures} left)")
        self.effects.append(event.idempotency_key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path / "ledger.db", clock=clock) as opened:
        yield opened


def _store(ledger: SqliteLedger, event_id: str, payload: object = None) -> None:
    body = json.dumps(payload or {"type": "order.created"}).encode()
    ledger.record_many([Incoming("shop", event_id, "order.created", body, {})])


def _processor(
    ledger: SqliteLedger, clock: Clock, *handlers: Handler, **options: object
) -> Processor:
    pipeline = Pipeline("new-order", "shop", tuple(handlers))
    policy = RetryPolicy(max_attempts=5, base_s=1.0, cap_s=60.0)
    return Processor(
        ledger, [pipeline], policy=policy, clock=clock, rng=random.Random(7), **options
    )


def _drain(processor: Processor, clock: Clock, rounds: int = 20) -> None:
    """Process, then jump the clock past any retry time, until nothing waits."""
    for _ in range(rounds):
        processor.run_until_idle()
        due = processor.ledger.next_due()
        if due is None:
            return
        clock.now = max(clock.now, due) + 0.001


def test_process_pending_event_runs_action_once_with_event_id_key(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_1")
    handler = Handler()

    _drain(_processor(ledger, clock, handler), clock)

    assert handler.calls == [("shop:evt_1", 1)]
    assert ledger.stats()["done"] == 1


def test_process_handler_failing_three_times_then_done_on_fourth(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_flaky")
    handler = Handler(failures=3)
    processor = _processor(ledger, clock, handler)

    _drain(processor, clock)

    assert [attempt for _, attempt in handler.calls] == [1, 2, 3, 4]
    assert handler.effects == ["shop:evt_flaky"]
    [state] = ledger.events()
    assert (state.status, state.attempts, state.last_error) == ("done", 4, None)
    assert processor.metrics.value("retried") == 3


def test_process_retry_waits_for_backoff_before_second_attempt(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_1")
    handler = Handler(failures=1)
    processor = _processor(ledger, clock, handler)

    processor.run_until_idle()

    assert len(handler.calls) == 1
    [state] = ledger.events()
    assert state.status == "failed"
    assert START <= state.next_at <= START + 1.0
    assert "downstream said no" in (state.last_error or "")


def test_process_always_failing_ends_dead_then_replay_after_fix_runs_once(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_doomed")
    handler = Handler(failures=10**6)
    processor = _processor(ledger, clock, handler)

    _drain(processor, clock)

    [dead] = ledger.events(status="dead")
    assert (dead.event_id, dead.attempts) == ("evt_doomed", 5)
    assert "downstream said no" in (dead.last_error or "")
    assert processor.metrics.value("dead") == 1

    handler.failures = 0
    assert requeue(ledger, choose(ledger, dead=True), now=clock.now) == 1
    _drain(processor, clock)

    assert handler.effects == ["shop:evt_doomed"]
    assert len(handler.calls) == 6
    assert ledger.stats()["done"] == 1
    assert requeue(ledger, choose(ledger, dead=True), now=clock.now) == 0


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (4, 8.0), (10, 60.0)],
    ids=["first", "second", "fourth", "capped"],
)
def test_retry_policy_delay_is_full_jitter_under_ceiling(
    attempt: int, ceiling: float
) -> None:
    policy = RetryPolicy(max_attempts=10, base_s=1.0, cap_s=60.0)
    rng = random.Random(3)

    delays = [policy.delay(attempt, rng) for _ in range(500)]

    assert 0 <= min(delays) < ceiling * 0.1
    assert ceiling * 0.9 < max(delays) <= ceiling


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_s": -1.0}, {"base_s": 10.0, "cap_s": 1.0}],
    ids=["no-attempts", "negative-base", "cap-below-base"],
)
def test_retry_policy_bad_values_raise_config_error(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="retry policy"):
        RetryPolicy(**options)  # type: ignore[arg-type]


def test_process_claim_of_dead_worker_runs_again_after_lease_with_same_key(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_orphan")
    ledger.claim("worker-that-died", now=clock.now, lease_s=30)
    handler = Handler()
    processor = _processor(ledger, clock, handler, lease_s=30)

    processor.run_until_idle()
    assert handler.calls == []

    clock.now += 30
    processor.run_until_idle()

    assert handler.calls == [("shop:evt_orphan", 2)]
    assert ledger.stats()["done"] == 1


def test_process_lease_expired_after_last_attempt_is_dead_without_running(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_poison")
    for _ in range(5):
        ledger.claim("crashing-worker", now=clock.now, lease_s=1)
        clock.now += 1
    handler = Handler()

    _processor(ledger, clock, handler).run_until_idle()

    assert handler.calls == []
    [dead] = ledger.events(status="dead")
    assert "stopped during the last attempt" in (dead.last_error or "")


def test_process_event_no_workflow_handles_is_ignored_with_note(
    ledger: SqliteLedger, clock: Clock
) -> None:
    """Settled without running anything, and told apart from events that ran."""
    ledger.record_many([Incoming("forms", "f1", "form.submitted", b"{}", {})])
    handler = Handler()
    processor = _processor(ledger, clock, handler)

    processor.run_until_idle()

    assert handler.calls == []
    [state] = ledger.events()
    assert (state.status, state.note) == ("ignored", "No workflow handles this event.")
    assert ledger.stats()["ignored"] == 1 and ledger.stats()["done"] == 0
    assert processor.metrics.value("ignored") == 1
    assert processor.metrics.value("processed") == 0


def test_pipeline_with_event_type_runs_only_for_that_type(
    ledger: SqliteLedger, clock: Clock
) -> None:
    ledger.record_many(
        [
            Incoming("shop", "a", "order.created", b"{}", {}),
            Incoming("shop", "b", "order.fulfilled", b"{}", {}),
        ]
    )
    created, fulfilled = Handler(), Handler()
    pipelines = [
        Pipeline("new-order", "shop", (created,), event_types=("order.created",)),
        Pipeline("shipped", "shop", (fulfilled,), event_types=("order.fulfilled",)),
    ]

    Processor(ledger, pipelines, clock=clock).run_until_idle()

    assert (created.effects, fulfilled.effects) == (["shop:a"], ["shop:b"])


def _order(version: int) -> dict[str, object]:
    return {"type": "order.updated", "data": {"id": "ord_1", "version": version}}


def test_process_older_version_after_newer_is_stale_and_not_applied(
    ledger: SqliteLedger, clock: Clock
) -> None:
    """An "updated" (v2) that arrives before its "created" (v1) keeps v2."""
    _store(ledger, "evt_v2", _order(2))
    clock.now += 1
    _store(ledger, "evt_v1", _order(1))
    handler = Handler()
    ordering = Ordering(object_id="data.id", version="data.version")
    processor = Processor(
        ledger, [Pipeline("orders", "shop", (handler,), ordering=ordering)], clock=clock
    )

    processor.run_until_idle()

    assert handler.effects == ["shop:evt_v2"]
    states = {e.event_id: (e.status, e.note) for e in ledger.events()}
    assert states["evt_v1"] == ("stale", "Older than the version already applied.")
    assert states["evt_v2"][0] == "done"
    assert processor.metrics.value("stale") == 1


def test_process_event_without_ordering_fields_is_applied(
    ledger: SqliteLedger, clock: Clock
) -> None:
    _store(ledger, "evt_1", {"type": "ping"})
    handler = Handler()
    ordering = Ordering(object_id="data.id", version="data.version")

    Processor(
        ledger, [Pipeline("orders", "shop", (handler,), ordering=ordering)], clock=clock
    ).run_until_idle()

    assert handler.effects == ["shop:evt_1"]


def test_start_workers_process_in_background_until_stop(tmp_path: Path) -> None:
    handler = Handler()
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        processor = Processor(ledger, [Pipeline("p", "shop", (handler,))], poll_s=0.02)
        processor.start(workers=2)
        try:
            for n in range(20):
                _store(ledger, f"evt_{n}")
            processor.wake()
            deadline = time.monotonic() + 10
            while ledger.stats()["done"] < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            processor.stop()

    assert sorted(handler.effects) == sorted(f"shop:evt_{n}" for n in range(20))


class _LockedOnce:
    """A ledger whose first claim fails as a locked SQLite file does (the real
    lock takes LOCK_WAIT_S to time out); everything else is the real ledger."""

    def __init__(self, ledger: SqliteLedger) -> None:
        self._ledger = ledger
        self.failed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._ledger, name)

    def claim(self, *args: object, **kwargs: object) -> object:
        if not self.failed:
            self.failed = True
            raise LedgerError("The ledger x.db failed to claim: database is locked.")
        return self._ledger.claim(*args, **kwargs)  # type: ignore[arg-type]


def test_worker_waits_out_a_locked_ledger_with_one_warning_and_no_traceback(
    ledger: SqliteLedger, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.record_many([Incoming("shop", "e1", "order.created", b"{}", {})])
    handler = Handler()
    locked = _LockedOnce(ledger)
    processor = Processor(
        locked,  # type: ignore[arg-type]
        [Pipeline("new-order", "shop", (handler,))],
        poll_s=0.01,
    )

    with caplog.at_level(logging.WARNING, logger="hooklab.processing"):
        processor.start(1)
        deadline = time.monotonic() + 10
        while not handler.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        processor.stop()

    assert locked.failed and len(handler.calls) == 1
    [waiting] = [r for r in caplog.records if r.getMessage() == "worker.waiting"]
    assert waiting.exc_info is None and "database is locked" in waiting.reason


class _FullLedger(SqliteLedger):
    """A real ledger whose every claim fails, as on a full disk."""

    def claim(self, *args: object, **kwargs: object) -> list[Any]:
        raise LedgerError("database or disk is full")


def test_workers_on_a_failing_ledger_wait_a_poll_between_tries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Events stay due while the ledger fails, so without a wait a worker would
    retry (and log) thousands of times a second."""
    with _FullLedger(tmp_path / "ledger.db") as full:
        _store(full, "evt_1")
        processor = Processor(
            full, [Pipeline("new-order", "shop", (Handler(),))], poll_s=0.1
        )
        with caplog.at_level(logging.WARNING, logger="hooklab.processing"):
            processor.start(workers=2)
            time.sleep(1.0)
            processor.stop()

    waits = [r for r in caplog.records if r.getMessage() == "worker.waiting"]
    assert 2 <= len(waits) <= 2 * 12  # about one per worker per 0.1 s poll
