"""Tests for hooklab.groupcommit: concurrent deliveries share one commit and one
fsync, and none is answered before the fsync that made it durable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from hooklab.errors import LedgerError
from hooklab.groupcommit import GroupCommitter
from hooklab.ledger import Incoming, Recorded, SqliteLedger


class _CountingLedger(SqliteLedger):
    """A real SQLite ledger that notes the size of every batch it commits."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def write_many(
        self, items: Sequence[Incoming], *, wait: bool = True
    ) -> list[Recorded] | None:
        self.batches.append(len(items))
        return super().write_many(items, wait=wait)


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[_CountingLedger]:
    with _CountingLedger(tmp_path / "ledger.db") as opened:
        yield opened


def _item(n: int, event_id: str | None = None) -> Incoming:
    return Incoming("shop", event_id or f"evt_{n}", "order.created", b"{}", {})


def test_record_fifty_waiting_together_share_one_commit(
    counting: _CountingLedger,
) -> None:
    committer = GroupCommitter(counting)
    before = counting.commits

    async def scenario() -> list[Recorded]:
        return await asyncio.gather(*(committer.record(_item(n)) for n in range(50)))

    outcomes = asyncio.run(scenario())

    assert all(o.new for o in outcomes)
    assert counting.batches == [50]
    assert counting.commits - before == 1
    assert counting.count() == 50


def test_record_later_turn_gets_its_own_commit(counting: _CountingLedger) -> None:
    committer = GroupCommitter(counting)

    async def scenario() -> None:
        await asyncio.gather(*(committer.record(_item(n)) for n in range(3)))
        await committer.record(_item(3))

    asyncio.run(scenario())

    assert counting.batches == [3, 1]


def test_record_more_than_max_batch_splits_commits(counting: _CountingLedger) -> None:
    committer = GroupCommitter(counting, max_batch=20)

    async def scenario() -> list[Recorded]:
        return await asyncio.gather(*(committer.record(_item(n)) for n in range(50)))

    asyncio.run(scenario())

    assert counting.batches == [20, 20, 10]


def test_record_same_id_at_same_moment_exactly_one_new(tmp_path: Path) -> None:
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        committer = GroupCommitter(ledger)

        async def scenario() -> list[Recorded]:
            copies = [committer.record(_item(0, "evt_same")) for _ in range(20)]
            return await asyncio.gather(*copies)

        outcomes = asyncio.run(scenario())

        assert sorted(o.new for o in outcomes) == [False] * 19 + [True]
        assert ledger.stats()["pending"] == 1


def test_record_ledger_failure_reaches_every_waiter(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    ledger.close()
    committer = GroupCommitter(ledger)

    async def scenario() -> list[Recorded | BaseException]:
        waiting = [committer.record(_item(n)) for n in range(3)]
        return await asyncio.gather(*waiting, return_exceptions=True)

    outcomes = asyncio.run(scenario())

    assert all(isinstance(o, LedgerError) for o in outcomes)


def test_on_commit_called_only_for_new_events(tmp_path: Path) -> None:
    calls: list[int] = []
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        committer = GroupCommitter(ledger, on_commit=lambda: calls.append(1))

        async def scenario() -> None:
            await committer.record(_item(0))
            await committer.record(_item(0))

        asyncio.run(scenario())

    assert calls == [1]


def test_record_after_close_raises_ledger_error(tmp_path: Path) -> None:
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        committer = GroupCommitter(ledger)
        committer.close()

        with pytest.raises(LedgerError, match="closed"):
            asyncio.run(committer.record(_item(0)))


class _GatedLedger(_CountingLedger):
    """Holds every sync until ``release`` is set; ``started`` says one began."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.started = threading.Event()
        self.release = threading.Event()

    def sync(self) -> None:
        self.started.set()
        assert self.release.wait(10), "the test never released the sync"
        super().sync()


def test_deliveries_arriving_during_a_sync_share_the_next_commit(
    tmp_path: Path,
) -> None:
    """They could not be answered before the next sync anyway: one commit of all."""
    with _GatedLedger(tmp_path / "ledger.db") as gated:
        committer = GroupCommitter(gated)

        async def scenario() -> None:
            loop = asyncio.get_running_loop()
            first = asyncio.ensure_future(committer.record(_item(0)))
            assert await loop.run_in_executor(None, gated.started.wait, 10)
            rest = []
            for n in range(1, 21):  # in twenty loop turns, during the first sync
                rest.append(asyncio.ensure_future(committer.record(_item(n))))
                await asyncio.sleep(0)
            await asyncio.sleep(0.05)
            assert gated.count() == 1
            gated.release.set()
            await asyncio.gather(first, *rest)

        asyncio.run(scenario())

        assert gated.batches == [1, 20]
        assert gated.syncs == 2
        assert gated.count() == 21


def test_no_delivery_is_answered_before_its_sync(tmp_path: Path) -> None:
    """Committed and visible is not enough: the answer waits for the fsync."""
    with _GatedLedger(tmp_path / "ledger.db") as gated:
        committer = GroupCommitter(gated)

        async def scenario() -> None:
            loop = asyncio.get_running_loop()
            waiting = [
                asyncio.ensure_future(committer.record(_item(n))) for n in range(5)
            ]
            assert await loop.run_in_executor(None, gated.started.wait, 10)
            await asyncio.sleep(0.05)
            assert gated.count() == 5
            assert not any(future.done() for future in waiting)
            gated.release.set()
            assert all(o.new for o in await asyncio.gather(*waiting))

        asyncio.run(scenario())


def test_another_writer_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """A delivery waits for another connection's write lock in the syncer thread,
    while the loop goes on serving."""
    with _CountingLedger(tmp_path / "ledger.db") as counting:
        committer = GroupCommitter(counting)
        other = sqlite3.connect(
            tmp_path / "ledger.db", isolation_level=None, check_same_thread=False
        )
        other.execute("BEGIN IMMEDIATE")  # holds the write lock

        async def scenario() -> tuple[int, Recorded]:
            loop = asyncio.get_running_loop()
            delivery = asyncio.ensure_future(committer.record(_item(0)))
            ticks = 0
            started = time.monotonic()
            while time.monotonic() - started < 0.3:
                await asyncio.sleep(0.01)
                ticks += 1
            assert not delivery.done()
            await loop.run_in_executor(None, other.execute, "COMMIT")
            return ticks, await delivery

        ticks, outcome = asyncio.run(scenario())
        other.close()

        assert ticks >= 10  # the loop ran all along (blocked, it would show 1)
        assert outcome.new
        assert counting.count() == 1
        assert counting.batches == [1, 1]  # tried on the loop, then in the syncer


class _UnsyncableLedger(_CountingLedger):
    """A real ledger whose disk refuses every sync."""

    def sync(self) -> None:
        raise LedgerError("the disk is full")


def test_a_failed_sync_fails_its_deliveries_and_a_retry_is_a_duplicate(
    tmp_path: Path,
) -> None:
    with _UnsyncableLedger(tmp_path / "ledger.db") as unsyncable:
        committer = GroupCommitter(unsyncable)

        async def scenario() -> list[Recorded | BaseException]:
            waiting = [committer.record(_item(n)) for n in range(3)]
            return await asyncio.gather(*waiting, return_exceptions=True)

        outcomes = asyncio.run(scenario())

        assert all(isinstance(o, LedgerError) for o in outcomes)
    # The sender gets no acknowledgement and retries; the copy already committed
    # is found, so the retry is answered as a duplicate once a sync succeeds.
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        retried = asyncio.run(GroupCommitter(ledger).record(_item(0)))
        assert not retried.new


def test_close_still_commits_the_deliveries_already_waiting(
    counting: _CountingLedger,
) -> None:
    committer = GroupCommitter(counting)

    async def scenario() -> list[Recorded]:
        waiting = [asyncio.ensure_future(committer.record(_item(n))) for n in range(5)]
        await asyncio.sleep(0)
        committer.close()
        return await asyncio.gather(*waiting)

    outcomes = asyncio.run(scenario())

    assert [o.new for o in outcomes] == [True] * 5
    assert counting.count() == 5


class _PickyLedger(_CountingLedger):
    """A real ledger that cannot store one particular event id."""

    def write_many(
        self, items: Sequence[Incoming], *, wait: bool = True
    ) -> list[Recorded] | None:
        if any(item.event_id == "evt_poison" for item in items):
            self.batches.append(len(items))
            raise LedgerError("cannot store evt_poison", per_item=True)
        return super().write_many(items, wait=wait)


def test_one_unstorable_delivery_does_not_fail_its_batch(tmp_path: Path) -> None:
    with _PickyLedger(tmp_path / "ledger.db") as picky:
        committer = GroupCommitter(picky)

        async def scenario() -> list[Recorded | BaseException]:
            items = [_item(n) for n in range(10)] + [_item(10, "evt_poison")]
            waiting = [committer.record(item) for item in items]
            return await asyncio.gather(*waiting, return_exceptions=True)

        outcomes = asyncio.run(scenario())

        assert [isinstance(o, Recorded) and o.new for o in outcomes[:10]] == [True] * 10
        assert isinstance(outcomes[10], LedgerError)
        assert picky.count() == 10
        assert picky.batches[0] == 11  # tried together first, then one by one


class _LockedLedger(_CountingLedger):
    """A real ledger whose every write fails as a locked database does."""

    def write_many(
        self, items: Sequence[Incoming], *, wait: bool = True
    ) -> list[Recorded] | None:
        self.batches.append(len(items))
        raise LedgerError("database is locked")


def test_a_locked_ledger_fails_the_batch_once_not_item_by_item(tmp_path: Path) -> None:
    with _LockedLedger(tmp_path / "ledger.db") as locked:
        committer = GroupCommitter(locked)

        async def scenario() -> list[Recorded | BaseException]:
            waiting = [committer.record(_item(n)) for n in range(10)]
            return await asyncio.gather(*waiting, return_exceptions=True)

        outcomes = asyncio.run(scenario())

        assert all(isinstance(o, LedgerError) for o in outcomes)
        assert locked.batches == [10]
