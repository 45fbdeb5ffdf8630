"""Tests for hooklab.ledgerwriter: group commit through a real writer process."""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hooklab.errors import LedgerError
from hooklab.ledger import Incoming, Recorded, SqliteLedger
from hooklab.ledgerwriter import ProcessCommitter, _commit
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier, sign


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


def test_deliveries_gathered_behind_a_dead_childs_batch_are_refused_not_stranded(
    path: Path,
) -> None:
    """A child killed with one batch in hand and more gathered behind it: all of
    them are refused (their senders retry), and the next delivery is stored."""
    committer = ProcessCommitter(path)

    async def scenario() -> tuple[list[object], Recorded]:
        await committer.record(_item(0))
        writer = committer._writer
        assert writer is not None and writer.process is not None
        os.kill(writer.process.pid, signal.SIGSTOP)
        in_hand = asyncio.ensure_future(committer.record(_item(1)))
        await asyncio.sleep(0.1)
        behind = [asyncio.ensure_future(committer.record(_item(n))) for n in (2, 3)]
        await asyncio.sleep(0.1)
        os.kill(writer.process.pid, signal.SIGKILL)
        refused = await asyncio.wait_for(
            asyncio.gather(in_hand, *behind, return_exceptions=True), 10
        )
        later = await asyncio.wait_for(committer.record(_item(4)), 10)
        await committer.aclose()
        return refused, later

    refused, later = asyncio.run(scenario())

    assert all(isinstance(o, LedgerError) for o in refused)
    assert later.new


def test_a_child_that_stops_answering_is_killed_and_its_batch_refused(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hooklab.ledgerwriter._STUCK_S", 0.5)
    committer = ProcessCommitter(path)

    async def scenario() -> tuple[object, Recorded]:
        await committer.record(_item(0))
        writer = committer._writer
        assert writer is not None and writer.process is not None
        os.kill(writer.process.pid, signal.SIGSTOP)
        try:
            stuck: object = await asyncio.wait_for(committer.record(_item(1)), 10)
        except LedgerError as exc:
            stuck = exc
        later = await asyncio.wait_for(committer.record(_item(2)), 10)
        await committer.aclose()
        return stuck, later

    stuck, later = asyncio.run(scenario())

    assert isinstance(stuck, LedgerError)
    assert later.new


def test_a_failed_start_of_any_kind_is_reported_and_retried(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of descriptors when a child is needed: refused, and once descriptors
    are back the next delivery starts one (no delivery waits forever)."""
    committer = ProcessCommitter(path)
    real_socketpair = socket.socketpair

    def exhausted() -> tuple[socket.socket, socket.socket]:
        raise OSError(errno.EMFILE, "Too many open files")

    async def scenario() -> tuple[list[object], Recorded]:
        monkeypatch.setattr("hooklab.ledgerwriter.socket.socketpair", exhausted)
        refused = await asyncio.wait_for(
            asyncio.gather(
                *(committer.record(_item(n)) for n in range(3)),
                return_exceptions=True,
            ),
            10,
        )
        assert committer.problem is not None and "open files" in committer.problem
        monkeypatch.setattr("hooklab.ledgerwriter.socket.socketpair", real_socketpair)
        later = await asyncio.wait_for(committer.record(_item(3)), 10)
        assert committer.problem is None
        await committer.aclose()
        return refused, later

    refused, later = asyncio.run(scenario())

    assert all(isinstance(o, LedgerError) for o in refused)
    assert later.new


def test_a_ledger_replaced_while_serving_is_not_written_by_a_new_child(
    path: Path,
) -> None:
    """A new child refuses a file that is not the one serve opened, rather than
    start a second ledger that serve's workers never read."""
    committer = ProcessCommitter(path)

    async def scenario() -> object:
        await committer.record(_item(0))
        writer = committer._writer
        assert writer is not None and writer.process is not None
        os.kill(writer.process.pid, signal.SIGKILL)
        writer.process.wait()
        await asyncio.sleep(0.1)
        path.rename(path.with_name("moved.db"))
        Path(f"{path}-wal").unlink(missing_ok=True)
        try:
            return await committer.record(_item(1))
        except LedgerError as exc:
            return exc

    outcome = asyncio.run(scenario())

    assert isinstance(outcome, LedgerError)
    assert "no longer the file hooklab serve opened" in str(outcome)
    assert not path.exists()  # no second ledger was started


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_the_child_is_not_given_the_secrets_in_serves_environment(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_SECRET", "whsec_do-not-pass-me-on")
    committer = ProcessCommitter(path)

    async def scenario() -> bytes:
        await committer.record(_item(0))
        writer = committer._writer
        assert writer is not None and writer.process is not None
        environment = Path(f"/proc/{writer.process.pid}/environ").read_bytes()
        await committer.aclose()
        return environment

    environment = asyncio.run(scenario())

    assert b"SHOP_SECRET" not in environment
    assert b"do-not-pass-me-on" not in environment
    assert b"PATH=" in environment


def test_a_ledger_found_read_only_is_opened_again(tmp_path: Path) -> None:
    """SQLite opens a file it may not write read-only without a word; the child
    notices the refusal and reopens (here a read-only connection stands in for
    that fallback, which root cannot provoke with chmod)."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger._conn = sqlite3.connect(  # what SQLite's fallback leaves behind
            f"file:{path}?mode=ro", uri=True, check_same_thread=False
        )
        replies, reopen = _commit(ledger, [(1, [_item(0), _item(1)])])

    [(sequence, outcomes, syncs)] = replies
    assert reopen
    assert (sequence, syncs) == (1, 0)
    assert all("readonly" in str(o) for o in outcomes)


def test_healthz_says_when_the_writer_cannot_start_and_deliveries_get_503(
    tmp_path: Path,
) -> None:
    """serve starts its writer before the first delivery; when it cannot, the
    health check fails with the reason instead of answering ok."""
    folder = tmp_path / "folder"
    folder.mkdir()
    secret = "whsec_" + base64.b64encode(b"healthz-test-key-0123456789").decode()
    sources = {"shop": Source("shop", Verifier("standard-webhooks", secret))}
    body = b'{"type": "order.created", "id": "evt_1"}'
    headers = sign("standard-webhooks", secret, body, msg_id="evt_1")

    with SqliteLedger(tmp_path / "workers.db") as workers_ledger:
        app = create_app(sources, workers_ledger, writer="process")
        app.committer.path = folder  # as if the ledger file were this folder
        app.committer._identity = None
        with serve_in_thread(app) as server, httpx.Client(base_url=server.url) as http:
            health = http.get("/healthz")
            delivery = http.post("/hooks/shop", content=body, headers=headers)

    assert health.status_code == 503
    assert "cannot be opened" in health.json()["reason"]
    assert delivery.status_code == 503
    assert delivery.json()["error"] == "ledger"
