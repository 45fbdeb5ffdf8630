"""Group commit: concurrent requests share one commit and one fsync.

The receiver hands each verified delivery to ``GroupCommitter.record`` and awaits it.
The deliveries awaited together form one batch, which the loop commits with
``Ledger.write_many``: one transaction, visible at once, not yet on disk. A syncer
thread of its own then calls ``Ledger.sync`` (one fsync) and only then hands the
outcomes back to the loop, which answers the requests. While it syncs (the fsync
releases the GIL), the loop goes on reading and verifying requests, which gather
and are committed as one batch when the sync ends: they could not be answered
before the next sync anyway. Alone, a delivery is committed at the end of its
loop turn. So durability costs one fsync per batch, not per request, and the loop
never waits for the disk.

This is the library's default (``create_app``); ``hooklab serve`` commits in a
process of its own instead (``hooklab.ledgerwriter``), which measured faster.

A batch the loop cannot commit at once (another thread or process holds the write
lock, or one of its deliveries cannot be stored) goes to the syncer thread, which
commits it there, waiting for the lock, before its next sync.

Three earlier versions were slower, as measured by ``make bench``. Committing
and syncing in the loop's own thread blocked every request during each fsync.
Committing through ``loop.run_in_executor`` left the writer idle between commits
until the loop noticed the last one had finished. A writer thread that both
committed and synced needed the GIL several times a commit while the loop ran
Python, and waited for it each time; the loop and the writer took turns. On one
2-core machine ``make bench`` measured that version at 0.52 and 0.55 of the no-op
endpoint's rate (p99 29 and 16 ms), and this one at 0.57 to 0.62 (p99 10-12 ms).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

from hooklab.errors import LedgerError
from hooklab.ledger import Incoming, Ledger, Recorded

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitter"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 512

_Waiter = tuple[Incoming, "asyncio.Future[Recorded]"]


class _Batch(NamedTuple):
    """Deliveries committed together, or waiting for the syncer to commit them.

    ``outcome`` is one Recorded per waiter once committed, the exception that
    failed them all, or None while not yet written.
    """

    waiters: list[_Waiter]
    outcome: list[Recorded] | Exception | None
    loop: asyncio.AbstractEventLoop


class GroupCommitter:
    """Commits the deliveries awaited in one event-loop turn together, and answers
    them once a shared fsync has made them durable.

    ``on_commit`` is called on the event loop after each sync that made at least
    one new event durable (the workers use it to wake up).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self._on_commit = on_commit
        self._turn: list[_Waiter] = []  # not yet committed; loop thread only
        self._syncing = False  # a sync is under way; loop thread only
        self._queued: list[_Batch] = []  # for the syncer: to sync, or to write first
        self._ready = threading.Condition()  # guards _queued, _closed and _thread
        self._closed = False
        self._thread: threading.Thread | None = None
        self._batches = 0
        self._syncs = 0

    def __repr__(self) -> str:
        return f"GroupCommitter(ledger={self.ledger!r}, max_batch={self.max_batch})"

    @property
    def batches(self) -> int:
        """How many batches were committed from the loop (or handed to the syncer)."""
        return self._batches

    @property
    def syncs(self) -> int:
        """How many syncs made those batches durable."""
        return self._syncs

    async def record(
        self, item: Incoming, loop: asyncio.AbstractEventLoop | None = None
    ) -> Recorded:
        """Store ``item`` durably, sharing a commit with the others of this turn.

        ``loop``, when the caller has it, is the running loop.
        """
        if self._closed:
            raise LedgerError("The group committer is closed; no delivery is stored.")

        loop = loop or asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        # While a sync is under way, deliveries gather until it ends (see _settle_all):
        # they could not be answered before the next sync anyway, and one commit
        # of many costs less than many of a few.
        if not self._turn and not self._syncing:
            loop.call_soon(self._flush, loop)
        self._turn.append((item, future))
        if len(self._turn) >= self.max_batch:
            self._flush(loop)
        return await future

    def close(self) -> None:
        """Refuse further deliveries; those already waiting are still committed."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Close, and wait until the syncer has synced and answered everything."""
        self.close()
        with self._ready:
            thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, timeout_s)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit this turn's deliveries and queue them for the syncer (on the loop)."""
        turn, self._turn = self._turn, []
        if not turn:
            return
        batches = []

        for start in range(0, len(turn), self.max_batch):
            waiters = turn[start : start + self.max_batch]
            items = [item for item, _ in waiters]
            outcome: list[Recorded] | Exception | None
            try:
                outcome = self.ledger.write_many(items, wait=False)
            except Exception as exc:  # any failure must reach every waiting request
                # One delivery that cannot be stored must not fail the others: the
                # syncer tries them one by one. A broken store fails them all now.
                if not getattr(exc, "per_item", False) or len(waiters) == 1:
                    logger.error("ledger.batch_failed", extra={"size": len(waiters)})
                    self._settle(waiters, exc)
                    continue
                outcome = None
            batches.append(_Batch(waiters, outcome, loop))

        if batches:
            self._batches += len(batches)
            self._syncing = True
            self._queue(batches)

    def _queue(self, batches: list[_Batch]) -> None:
        with self._ready:
            self._queued += batches
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._sync, name="hooklab-sync", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def _sync(self) -> None:
        """The syncer thread: commit what the loop could not, sync, answer; until
        closed with nothing left."""
        while True:
            with self._ready:
                while not self._queued and not self._closed:
                    self._ready.wait()
                if not self._queued:
                    return
                taken, self._queued = self._queued, []

            committed = [done for batch in taken for done in self._commit(batch)]
            if any(isinstance(batch.outcome, list) for batch in committed):
                try:
                    self.ledger.sync()
                    self._syncs += 1
                except Exception as exc:  # committed, but not known to be on disk
                    logger.error("ledger.sync_failed", extra={"size": len(committed)})
                    committed = [batch._replace(outcome=exc) for batch in committed]
            self._answer(committed)

    def _commit(self, batch: _Batch) -> list[_Batch]:
        """``batch`` committed (in the syncer thread, waiting for the lock if need be).

        When one of its deliveries cannot be stored, each is committed on its own.
        """
        if batch.outcome is not None:
            return [batch]

        try:
            outcome = self.ledger.write_many([item for item, _ in batch.waiters])
        except Exception as exc:
            if getattr(exc, "per_item", False) and len(batch.waiters) > 1:
                logger.warning("ledger.batch_split", extra={"size": len(batch.waiters)})
                return [
                    done
                    for waiter in batch.waiters
                    for done in self._commit(_Batch([waiter], None, batch.loop))
                ]
            logger.error("ledger.batch_failed", extra={"size": len(batch.waiters)})
            return [batch._replace(outcome=exc)]
        return [batch._replace(outcome=outcome)]

    def _answer(self, batches: list[_Batch]) -> None:
        """Hand synced outcomes to their loops, one wake-up each (syncer thread)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Batch]] = {}
        for batch in batches:
            by_loop.setdefault(batch.loop, []).append(batch)

        for loop, theirs in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._settle_all, theirs)
            except RuntimeError:  # that loop has closed; no one is waiting any more
                size = sum(len(batch.waiters) for batch in theirs)
                logger.warning("ledger.batch_unanswered", extra={"size": size})

    def _settle_all(self, batches: list[_Batch]) -> None:
        """Answer a sync's batches, then commit what gathered meanwhile (loop)."""
        for batch in batches:
            self._settle(batch.waiters, batch.outcome)
        self._syncing = False
        if self._turn:
            self._flush(batches[0].loop)

    def _settle(
        self,
        waiters: list[_Waiter],
        results: Sequence[Recorded] | Exception | None,
    ) -> None:
        """Wake every request of a batch (runs on the loop)."""
        if not isinstance(results, Sequence):
            error = results or LedgerError("The delivery was not stored.")
            for _, future in waiters:
                if not future.done():
                    future.set_exception(error)
            return

        for (_, future), outcome in zip(waiters, results, strict=True):
            if not future.done():  # a cancelled request (client gone) is still stored
                future.set_result(outcome)
        if self._on_commit is not None and any(o.new for o in results):
            self._on_commit()
