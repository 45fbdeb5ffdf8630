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


class _GatedLedger(SqliteLedger):
    """A real SQLite ledger whose commits wait for a gate, to hold a batch open."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
        self.batches.append(len(items))
        self.entered.set()
        self.gate.wait(5)
        return super().record_many(items)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[_GatedLedger]:
    with _GatedLedger(tmp_path / "ledger.db") as opened:
        yield opened


def _item(n: int, event_id: str | None = None) -> Incoming:
    return Incoming("shop", event_id or f"evt_{n}", "order.created", b"{}", {})


def test_record_while_commit_runs_next_fifty_share_one_commit(
    gated: _GatedLedger,
) -> None:
    committer = GroupCommitter(gated)

    async def scenario() -> list[Recorded]:
        first = asyncio.ensure_future(committer.record(_item(0)))
        await asyncio.to_thread(gated.entered.wait, 5)
        rest = [asyncio.ensure_future(committer.record(_item(n))) for n in range(1, 51)]
        await asyncio.sleep(0.05)
        gated.gate.set()
        return await asyncio.gather(first, *rest)

    outcomes = asyncio.run(scenario())
    committer.close()

    assert all(o.new for o in outcomes)
    assert gated.batches == [1, 50]
    assert gated.commits == 2
    assert gated.count() == 51


def test_record_same_id_at_same_moment_exactly_one_new(tmp_path: Path) -> None:
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        committer = GroupCommitter(ledger)

        async def scenario() -> list[Recorded]:
            copies = [committer.record(_item(0, "evt_same")) for _ in range(20)]
            return await asyncio.gather(*copies)

        outcomes = asyncio.run(scenario())
        committer.close()

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
    committer.close()

    assert all(isinstance(o, LedgerError) for o in outcomes)


def test_on_commit_called_only_for_new_events(tmp_path: Path) -> None:
    calls: list[int] = []
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        committer = GroupCommitter(ledger, on_commit=lambda: calls.append(1))

        async def scenario() -> None:
            await committer.record(_item(0))
            await committer.record(_item(0))

        asyncio.run(scenario())
        committer.close()

    assert calls == [1]


def test_record_after_close_raises_ledger_error(tmp_path: Path) -> None:
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        committer = GroupCommitter(ledger)
        committer.close()

        with pytest.raises(LedgerError, match="closed"):
            asyncio.run(committer.record(_item(0)))
