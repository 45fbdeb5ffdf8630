"""Group commit: concurrent requests share one durable ledger transaction.

The receiver hands each verified delivery to ``GroupCommitter.record`` and awaits it.
The first delivery to wait schedules a flush at the end of the event loop's current
turn; every request that reaches ``record`` before then joins the same batch. The
flush writes the batch with ``Ledger.record_many`` (one transaction, one fsync) and
wakes every waiting request at once. Under load a commit carries many deliveries,
so durability does not cost one fsync per request; alone, a delivery is committed
at once.

The flush runs in the event loop's own thread: handing batches to a writer thread
was measured slower, because the two threads then queue for the GIL on every
batch. While SQLite syncs, the loop waits, and new requests gather in the socket
buffers for the next batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hooklab.errors import LedgerError
from hooklab.ledger import Incoming, Ledger, Recorded

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitter"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 512

_Waiter = tuple[Incoming, "asyncio.Future[Recorded]"]


class GroupCommitter:
    """Batches the deliveries awaited in one event-loop turn into one commit.

    ``on_commit`` is called after each commit that stored at least one new event
    (the workers use it to wake up).
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
        self._pending: list[_Waiter] = []
        self._flush_scheduled = False
        self._closed = False

    def __repr__(self) -> str:
        return f"GroupCommitter(ledger={self.ledger!r}, max_batch={self.max_batch})"

    async def record(self, item: Incoming) -> Recorded:
        """Store ``item`` durably, sharing a commit with the others of this turn."""
        if self._closed:
            raise LedgerError("The group committer is closed; no delivery is stored.")

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        self._pending.append((item, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def close(self) -> None:
        """Refuse further deliveries; those already waiting are still committed."""
        self._closed = True

    def _flush(self) -> None:
        """Commit what is pending, a batch at a time, and wake its requests."""
        self._flush_scheduled = False

        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._commit(batch)

    def _commit(self, batch: list[_Waiter]) -> None:
        try:
            outcomes = self.ledger.record_many([item for item, _ in batch])
        except Exception as exc:  # any failure must reach every waiting request
            logger.error("ledger.batch_failed", extra={"size": len(batch)})
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return

        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # a cancelled request (client gone) is still stored
                future.set_result(outcome)
        if self._on_commit is not None and any(o.new for o in outcomes):
            self._on_commit()
