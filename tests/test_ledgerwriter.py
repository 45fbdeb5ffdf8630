"""Tests for hooklab.ledgerwriter: group commit through a real writer process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hooklab.errors import LedgerError
from hooklab.ledger import Incoming, Recorded, SqliteLedger
from hooklab.ledgerwriter import ProcessCommitter


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ledger.db"
    SqliteLedger(path).close()  # a ledger file, as `hooklab serve` has opened
    yield path


def _item(n: int, event_id: str | None = None) -> Incoming:
    body = b'{"n": %d}' % n
    headers = {"webhook-id": f"evt_{n}", "webhook-signature": "v1,c2lnbmF0dXJl"}
    return Incoming("shop", event_id or f"evt_{n}", "order.created", body, headers)


def _record_all(committer: ProcessCommitter, items: list[Incoming]) -> list[object]:
    """Record ``items`` together, then close the committer (the child exits)."""

    async def scenario() -> list[object]:
        waiting = [committer.record(item) for item in items]
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        await committer.aclose()
        return outcomes

    return asyncio.run(scenario())


def test_deliveries_are_stored_by_the_child_and_answered(path: Path) -> None:
    committer = ProcessCommitter(path)

    outcomes = _record_all(committer, [_item(n) for n in range(50)])

    assert all(isinstance(o, Recorded) and o.new for o in outcomes)
    with SqliteLedger(path) as ledger:
        stored = ledger.deliveries()
    assert [d.event_id for d in stored] == [f"evt_{n}" for n in range(50)]
    assert stored[7].body == b'{"n": 7}'
    assert "webhook-signature" not in stored[7].headers  # stored the ledger's way
    assert stored[7].headers["webhook-id"] == "evt_7"


def test_same_id_at_the_same_moment_is_new_once(path: Path) -> None:
    committer = ProcessCommitter(path)

    outcomes = _record_all(committer, [_item(0, "evt_same") for _ in range(20)])

    assert sorted(o.new for o in outcomes if isinstance(o, Recorded)) == [
        False
    ] * 19 + [True]
    with SqliteLedger(path) as ledger:
        assert ledger.count() == 1


def test_one_unstorable_delivery_fails_alone(path: Path) -> None:
    committer = ProcessCommitter(path)
    poison = _item(9, "evt_\udc80")  # a lone surrogate: no UTF-8 form to store

    outcomes = _record_all(committer, [_item(n) for n in range(5)] + [poison])

    assert all(isinstance(o, Recorded) and o.new for o in outcomes[:5])
    assert isinstance(outcomes[5], LedgerError)
    with SqliteLedger(path) as ledger:
        assert ledger.count() == 5


def test_on_commit_is_called_for_new_events_only(path: Path) -> None:
    calls: list[int] = []
    committer = ProcessCommitter(path, on_commit=lambda: calls.append(1))

    async def scenario() -> None:
        await committer.record(_item(0))
        await committer.record(_item(0))
        await committer.aclose()

    asyncio.run(scenario())

    assert calls == [1]


def test_a_killed_child_fails_its_waiters_and_a_new_one_takes_over(
    path: Path,
) -> None:
    committer = ProcessCommitter(path)

    async def scenario() -> tuple[object, Recorded]:
        await committer.record(_item(0))  # the child is up
        writer = committer._writer
        assert writer is not None and writer.process is not None
        os.kill(writer.process.pid, signal.SIGKILL)
        writer.process.wait()
        await asyncio.sleep(0.1)  # the loop notices the socket closed
        try:
            lost: object = await committer.record(_item(1))
        except LedgerError as exc:
            lost = exc
        later = await committer.record(_item(2))
        await committer.aclose()
        return lost, later

    lost, later = asyncio.run(scenario())

    # The delivery after the kill either met the dead child (refused, so its
    # sender retries) or a new one; the one after that is stored either way.
    assert isinstance(lost, (Recorded, LedgerError))
    assert later.new
    with SqliteLedger(path) as ledger:
        assert {"evt_0", "evt_2"} <= {d.event_id for d in ledger.deliveries()}


def test_ctrl_c_or_sigterm_to_the_group_does_not_stop_the_child(path: Path) -> None:
    """It ends when serve closes the socket, after committing what it was sent."""
    committer = ProcessCommitter(path)

    async def scenario() -> Recorded:
        await committer.record(_item(0))
        writer = committer._writer
        assert writer is not None and writer.process is not None
        os.kill(writer.process.pid, signal.SIGINT)
        os.kill(writer.process.pid, signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert writer.process.poll() is None
        later = await committer.record(_item(1))
        await committer.aclose()
        return later

    assert asyncio.run(scenario()).new


def test_a_ledger_the_child_cannot_open_is_a_clear_error(tmp_path: Path) -> None:
    not_a_ledger = tmp_path / "folder"
    not_a_ledger.mkdir()
    committer = ProcessCommitter(not_a_ledger)

    outcomes = _record_all(committer, [_item(0), _item(1)])

    assert all(isinstance(o, LedgerError) for o in outcomes)
    assert "cannot be opened" in str(outcomes[0])


def test_after_close_deliveries_are_refused_and_the_child_has_exited(
    path: Path,
) -> None:
    committer = ProcessCommitter(path)
    started = time.monotonic()
    _record_all(committer, [_item(0)])  # and close
    writer = committer._writer
    assert writer is not None and writer.process is not None

    assert writer.process.returncode == 0
    assert time.monotonic() - started < 5
    with pytest.raises(LedgerError, match="closed"):
        asyncio.run(committer.record(_item(1)))
