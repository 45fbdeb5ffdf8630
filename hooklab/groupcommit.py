"""Group commit: concurrent requests share one durable ledger transaction.

The receiver hands each verified delivery to ``GroupCommitter.record`` and awaits it.
One writer thread takes everything queued since its last commit, writes the batch
with ``Ledger.record_many`` (one transaction, one fsync) and then wakes every waiting
request at once. Under load a commit carries many deliveries, so durability does not
cost one fsync per request; alone, a delivery is committed immediately.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable

from hooklab.errors import LedgerError
from hooklab.ledger import Incoming, Ledger, Recorded

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitter"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 512

_Waiter = tuple[Incoming, asyncio.AbstractEventLoop, "asyncio.Future[Recorded]"]
_STOP = None


class GroupCommitter:
    """A writer thread that commits queued deliveries in batches.

    ``on_commit`` is called in the writer thread after each commit that stored at
    least one new event (the workers use it to wake up). The thread starts with
    the first ``record`` and ends with ``close``.
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
        self._queue: queue.SimpleQueue[_Waiter | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"GroupCommitter(ledger={self.ledger!r}, max_batch={self.max_batch})"

    async def record(self, item: Incoming) -> Recorded:
        """Store ``item`` durably, sharing a commit with whatever else is queued."""
        if self._closed:
            raise LedgerError("The group committer is closed; no delivery is stored.")
        self._ensure_started()

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        self._queue.put((item, loop, future))
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hooklab-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        """Commit batches until told to stop; the stop marker ends the last batch."""
        stopping = False

        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stopping = self._drain(first)

            self._commit(batch)

    def _drain(self, first: _Waiter) -> tuple[list[_Waiter], bool]:
        """Everything queued right now, up to ``max_batch``, and whether stop came."""
        batch = [first]

        while len(batch) < self.max_batch:
            try:
                waiter = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if waiter is _STOP:
                return batch, True
            batch.append(waiter)
        return batch, False

    def _commit(self, batch: list[_Waiter]) -> None:
        """Write one batch and wake its waiters, each on its own event loop."""
        try:
            outcomes: list[Recorded | BaseException] = list(
                self.ledger.record_many([item for item, _, _ in batch])
            )
        except Exception as exc:  # any failure must reach every waiting request
            logger.error("ledger.batch_failed", extra={"size": len(batch)})
            outcomes = [exc] * len(batch)

        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[object, object]]]
        by_loop = defaultdict(list)
        for (_, loop, future), outcome in zip(batch, outcomes, strict=True):
            by_loop[loop].append((future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop has closed; its requests are gone
                logger.warning("ledger.waiter_gone", extra={"size": len(settled)})

        new = any(isinstance(o, Recorded) and o.new for o in outcomes)
        if new and self._on_commit is not None:
            self._on_commit()


def _settle(settled: list[tuple[object, object]]) -> None:
    """Resolve each future with its outcome, in the loop that awaits it."""
    for future, outcome in settled:
        assert isinstance(future, asyncio.Future)
        if future.done():  # the request was cancelled (client gone); still stored
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
