"""Tests for hooklab.groupcommit: concurrent deliveries share one commit."""

from __future__ import annotations

import asyncio
import threading
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

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
        self.batches.append(len(items))
        return super().record_many(items)


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
    """Holds every commit until ``release`` is set; ``started`` says one began."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.started = threading.Event()
        self.release = threading.Event()

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
        self.started.set()
        assert self.release.wait(10), "the test never released the commit"
        return super().record_many(items)


def test_record_arriving_during_a_commit_joins_the_next_batch(tmp_path: Path) -> None:
    """While the writer thread commits, the loop keeps queueing for the next commit."""
    with _GatedLedger(tmp_path / "ledger.db") as gated:
        committer = GroupCommitter(gated)

        async def scenario() -> None:
            loop = asyncio.get_running_loop()
            first = asyncio.ensure_future(committer.record(_item(0)))
            assert await loop.run_in_executor(None, gated.started.wait, 10)
            rest = [
                asyncio.ensure_future(committer.record(_item(n))) for n in range(1, 21)
            ]
            await asyncio.sleep(0.05)  # the rest is handed over while the first commits
            gated.release.set()
            await asyncio.gather(first, *rest)

        asyncio.run(scenario())

        assert gated.batches == [1, 20]
        assert gated.count() == 21


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

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
        if any(item.event_id == "evt_poison" for item in items):
            self.batches.append(len(items))
            raise LedgerError("cannot store evt_poison", per_item=True)
        return super().record_many(items)


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

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
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
