"""The ledger writer process: the receiver's commits, away from its event loop.

``ProcessCommitter`` does what ``hooklab.groupcommit.GroupCommitter`` does (the
deliveries awaited together share a commit, and each is answered once its commit
is on disk) with the SQLite work in a child process (``python -m
hooklab.ledgerwriter``). The loop only pickles a batch onto a socket and
unpickles the outcomes. The child commits the batch in one transaction, fsyncs
and sends the outcomes back. One batch is with the child at a time: deliveries
that arrive meanwhile gather and go as the next batch when it is answered, as
they could not have been answered sooner. Measured against sending every loop
turn's deliveries at once (0.56 of the no-op rate) and keeping two batches with
the child (0.63), one at a time did best (0.66; medians of six paired rounds).

Why a process: SQLite releases the GIL while it steps a statement, but the
Python around each statement needs it back, and a thread that wants the GIL
while the loop runs Python waits for it (up to ``sys.getswitchinterval()``).
With the commits in the loop's own thread the loop spent about a sixth of its
time in SQLite; in a process of their own they use the second core (the child
spent 46-61 µs a delivery). On the 2-core machine of 2026-12-04, ``make bench``
put the receiver at 0.52-0.55 of a no-op endpoint's rate with a writer thread,
0.57-0.62 with the commits on the loop and the fsync in a thread, and 0.61-0.74
with this process (0.69, 0.72, 0.72 and 0.74 in the last four runs; the machine
is shared, and the no-op's own rate moved between 7,000 and 9,800 acks/s).

The child opens the same ledger file; SQLite serialises its writes with those
of the serving process's workers. If it dies, the deliveries waiting on it are
refused (503, so their senders retry) and the next delivery starts a new one.
When the serving process is killed, the child commits what it has read and
exits; nothing it was sent had been answered, so its senders retry.

Frames on the socket are a 4-byte big-endian length and a pickle. The socket is
a private pair between the two processes, so no one else can write to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hooklab.errors import LedgerError
from hooklab.ledger import Incoming, Recorded, SqliteLedger

__all__ = ["ProcessCommitter", "main"]

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
# Known shortcoming: a body is copied to the child and held by both processes,
# so deliveries near the 1 MiB limit are received at about half the rate of an
# in-process commit, with twice the memory; webhook bodies are mostly a few KB.
#: A batch goes at once, even while another is with the child, at this size.
_MAX_BATCH = 512
_MAX_BATCH_BYTES = 8 * 1024 * 1024
#: A child that has not answered a batch in this long is killed (a commit that
#: waits for another writer's lock gives up after LOCK_WAIT_S, 5 s).
_STUCK_S = 20.0
#: The most a child takes into one commit; more waits for the next.
_MAX_COMMIT_BYTES = 16 * 1024 * 1024
_READY = -1  # the sequence number of the child's first frame: opened, or why not
#: How long ``close`` waits for the child to commit what it was sent and exit.
_EXIT_WAIT_S = 10.0

# A batch's outcome per delivery: (new, received_at), or why it was not stored.
_Outcome = tuple[bool, float] | str
_Waiter = tuple[Incoming, "asyncio.Future[Recorded]"]


class ProcessCommitter:
    """Group commit through a writer process; the interface of GroupCommitter.

    ``on_commit`` is called on the event loop after each batch that stored at
    least one new event (the workers use it to wake up).
    """

    def __init__(
        self, ledger_path: str | Path, *, on_commit: Callable[[], None] | None = None
    ) -> None:
        self.path = Path(ledger_path)
        # The file as it is now, opened by serve: each child checks it still is.
        self._identity = _identity(self.path)
        self._on_commit = on_commit
        self._turn: list[_Waiter] = []  # gathered, not yet sent
        self._turn_bytes = 0
        self._sent: dict[int, tuple[float, list[_Waiter]]] = {}  # sent at, waiters
        self._sequence = 0
        self._synced = 0  # the fsyncs its children reported, for benchmarks
        self._writer: _Writer | None = None
        self._starting: asyncio.Future[_Writer] | None = None
        self._closed = False
        self._watching = False  # a check for a stuck child is scheduled
        #: Why the last start failed (None once a child runs); /healthz shows it.
        self.problem: str | None = None

    def __repr__(self) -> str:
        return f"ProcessCommitter(path={str(self.path)!r})"

    @property
    def batches(self) -> int:
        """How many batches were sent to the writer processes."""
        return self._sequence

    @property
    def syncs(self) -> int:
        """How many fsyncs the writer processes made for those batches."""
        return self._synced

    async def start(self) -> None:
        """Start the child now rather than at the first delivery (serve does, so
        that the first delivery does not wait for it); raise LedgerError if it
        cannot open the ledger."""
        await self._start(asyncio.get_running_loop())

    async def record(
        self, item: Incoming, loop: asyncio.AbstractEventLoop | None = None
    ) -> Recorded:
        """Store ``item`` durably, sharing a commit with the others gathered."""
        if self._closed:
            raise LedgerError("The ledger writer is closed; no delivery is stored.")

        loop = loop or asyncio.get_running_loop()
        if self._writer is None or self._writer.lost:
            await self._start(loop)

        future: asyncio.Future[Recorded] = loop.create_future()
        # While a batch is with the child, deliveries gather and go when it is
        # answered (see _received): the child would only have committed them
        # after that batch anyway, and one send of many costs less than many.
        if not self._turn and not self._sent:
            loop.call_soon(self._send)
        self._turn.append((item, future))
        self._turn_bytes += len(item.body)
        if len(self._turn) >= _MAX_BATCH or self._turn_bytes >= _MAX_BATCH_BYTES:
            self._send()
        return await future

    async def aclose(self, timeout_s: float = _EXIT_WAIT_S) -> None:
        """Refuse further deliveries, and wait while the child commits what it was
        sent and exits (it is killed if it has not within ``timeout_s``)."""
        self._closed = True
        if self._writer is not None:
            await self._writer.stop(timeout_s)
            await self._writer.reap()

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the child once, however many deliveries wait for it."""
        if self._starting is not None and not self._starting.done():
            await asyncio.shield(self._starting)
            return

        starting = self._starting = loop.create_future()
        try:
            if self._writer is not None:  # a lost one: reap it first
                await self._writer.reap()
            writer = await _Writer.start(
                self.path, self._identity, self._received, self._lost
            )
        except BaseException as exc:
            # Whatever went wrong, those waiting on this start must hear of it.
            error = (
                exc
                if isinstance(exc, LedgerError)
                else LedgerError(f"The ledger writer could not be started: {exc}.")
            )
            self.problem = str(error)
            starting.set_exception(error)
            starting.exception()  # retrieved here; each waiter re-raises
            if isinstance(exc, Exception) and exc is not error:
                raise error from exc
            raise
        self._writer = writer
        self.problem = None
        starting.set_result(writer)

    def _send(self) -> None:
        turn, self._turn = self._turn, []
        self._turn_bytes = 0
        if not turn:
            return
        writer = self._writer
        if writer is None or writer.lost:
            _fail(turn, LedgerError("The ledger writer stopped; retry later."))
            return

        self._sequence += 1
        loop = turn[0][1].get_loop()
        self._sent[self._sequence] = (loop.time(), turn)
        if not self._watching:
            self._watching = True
            loop.call_later(_STUCK_S / 2, self._watch, loop)
        # Plain tuples and dicts: a NamedTuple or a dict subclass pickles by
        # reference to its class, several times slower.
        writer.send(
            self._sequence,
            [(*item[:4], dict(item.headers), item.quarantine) for item, _ in turn],
        )

    def _received(self, sequence: int, outcomes: list[_Outcome], syncs: int) -> None:
        self._synced += syncs
        sent = self._sent.pop(sequence, None)
        if sent is None:  # refused already, as the child seemed stuck
            return
        waiters = sent[1]
        new = False
        for (_, future), outcome in zip(waiters, outcomes, strict=True):
            if future.done():  # a cancelled request (client gone) is still stored
                continue
            if isinstance(outcome, str):
                future.set_exception(LedgerError(outcome))
            else:
                future.set_result(Recorded(*outcome))
                new = new or outcome[0]
        if new and self._on_commit is not None:
            self._on_commit()
        if not self._sent and self._turn:
            self._send()

    def _lost(self, reason: str) -> None:
        """The child is gone: refuse what was sent to it and what gathered behind
        it (their senders retry); the next delivery starts a new one."""
        if not self._closed:
            logger.error("ledger.writer_lost", extra={"reason": reason})
        waiting, self._sent = self._sent, {}
        gathered, self._turn = self._turn, []
        self._turn_bytes = 0
        error = LedgerError(f"The ledger writer stopped ({reason}); retry later.")
        for _, waiters in waiting.values():
            _fail(waiters, error)
        _fail(gathered, error)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Kill a child that has held a batch past _STUCK_S (stopped, or hung)."""
        self._watching = False
        if not self._sent:
            return
        oldest = min(sent_at for sent_at, _ in self._sent.values())
        writer = self._writer
        if loop.time() - oldest > _STUCK_S and writer is not None:
            logger.error("ledger.writer_stuck", extra={"waited_s": _STUCK_S})
            writer.kill()  # its connection closes, and _lost refuses the waiting
            return
        self._watching = True
        loop.call_later(_STUCK_S / 2, self._watch, loop)


def _fail(waiters: list[_Waiter], error: LedgerError) -> None:
    for _, future in waiters:
        if not future.done():
            future.set_exception(error)


class _Writer(asyncio.Protocol):
    """The parent's end of one child: its process and the socket to it."""

    def __init__(
        self,
        received: Callable[[int, list[_Outcome], int], None],
        lost: Callable[[str], None],
    ) -> None:
        self._received = received
        self._on_lost = lost
        self._buffer = bytearray()
        self._ready: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.lost = False

    @classmethod
    async def start(
        cls,
        path: Path,
        identity: tuple[int, int] | None,
        received: Callable[[int, list[_Outcome], int], None],
        lost: Callable[[str], None],
    ) -> _Writer:
        """Start a child on ``path`` and wait until it has opened the ledger.

        The child is told which file the serving process has open (its device and
        inode), so that it refuses a file deleted or replaced since rather than
        start a second ledger beside the first.
        """
        loop = asyncio.get_running_loop()
        writer = cls(received, lost)
        writer._ready = loop.create_future()
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:  # no descriptors are left
            raise LedgerError(
                f"The ledger writer could not be started: {exc.strerror}."
            ) from exc
        try:
            writer.process = subprocess.Popen(
                [sys.executable, "-m", "hooklab.ledgerwriter", str(theirs.fileno())],
                stdin=subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                env=_child_environment(),
            )
            assert writer.process.stdin is not None
            # On stdin, not argv: the path may be any length or text.
            writer.process.stdin.write(pickle.dumps((path, identity)))
            writer.process.stdin.close()
        except OSError as exc:  # no process or pipe to be had (limits reached)
            ours.close()
            raise LedgerError(
                f"The ledger writer could not be started: {exc.strerror}."
            ) from exc
        finally:
            theirs.close()
        await loop.connect_accepted_socket(lambda: writer, ours)
        try:
            await writer._ready
        except LedgerError:  # it said why, or died first; reap it before saying so
            await writer.stop(_EXIT_WAIT_S)
            await writer.reap()
            raise
        return writer

    def send(self, sequence: int, items: list[tuple[Any, ...]]) -> None:
        assert self.transport is not None
        self.transport.write(_frame((sequence, items)))

    def kill(self) -> None:
        """End a child that no longer answers; its socket then reports it lost."""
        if self.process is not None:
            self.process.kill()
        if self.transport is not None:
            self.transport.abort()

    async def reap(self) -> None:
        """Collect a lost child's exit status (killing it if it lingers)."""
        if self.process is None:
            return
        try:
            await asyncio.to_thread(self.process.wait, _EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)

    async def stop(self, timeout_s: float) -> None:
        """Tell the child no more is coming; wait for it to close its end and exit."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write_eof()  # sent once what is buffered has gone
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout_s)
        except TimeoutError:
            logger.error("ledger.writer_stuck", extra={"timeout_s": timeout_s})
            self.kill()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for sequence, outcomes, syncs in _take_frames(self._buffer):
            if sequence == _READY:
                self._opened(outcomes)
            else:
                self._received(sequence, outcomes, syncs)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.closed.done():
            self.closed.set_result(None)
        code = self.process.poll() if self.process is not None else None
        reason = "it exited" if code is None else f"it exited with status {code}"
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(
                LedgerError(f"The ledger writer did not start ({reason}).")
            )
        self._on_lost(reason)

    def _opened(self, answer: object) -> None:
        assert self._ready is not None
        if answer is None:
            self._ready.set_result(None)
        else:
            self._ready.set_exception(LedgerError(str(answer)))


#: What the child keeps of the serving process's environment: enough to run
#: Python and find hooklab, and none of the secrets serve was given.
_CHILD_ENVIRONMENT = ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "TMPDIR")


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's (device, inode), or None if there is none yet."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _child_environment() -> dict[str, str]:
    kept = {name: os.environ[name] for name in _CHILD_ENVIRONMENT if name in os.environ}
    kept.update({k: v for k, v in os.environ.items() if k.startswith(("LC_", "LANG"))})
    return kept


def _frame(payload: object) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _take_frames(buffer: bytearray, max_bytes: int | None = None) -> list[Any]:
    """Unpickle and remove the complete frames at the start of ``buffer`` (those
    within ``max_bytes``, though always at least one)."""
    taken: list[Any] = []
    start = 0
    while len(buffer) - start >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + size
        if len(buffer) < end or (max_bytes is not None and taken and end > max_bytes):
            break
        taken.append(pickle.loads(buffer[start + _LENGTH.size : end]))
        start = end
    del buffer[:start]
    return taken


def _has_frame(buffer: bytearray) -> bool:
    if len(buffer) < _LENGTH.size:
        return False
    (size,) = _LENGTH.unpack_from(buffer)
    return len(buffer) >= _LENGTH.size + int(size)


# The child.


def main(fd: int, path: Path, identity: tuple[int, int] | None) -> None:
    """Serve one parent on socket ``fd`` until it closes its end or is gone.

    ``identity`` is the (device, inode) of the ledger file the parent has open,
    or None if there was none yet.
    """
    with socket.socket(fileno=fd) as channel:
        try:
            ledger = _open(path, identity)
        except LedgerError as exc:
            channel.sendall(_frame((_READY, str(exc), 0)))
            return

        try:
            channel.sendall(_frame((_READY, None, 0)))
            for batches in _arrivals(channel):
                replies, reopen = _commit(ledger, batches)
                channel.sendall(b"".join(_frame(reply) for reply in replies))
                if reopen:
                    # SQLite opens a file it may not write read-only without a
                    # word, and stays so; a new connection sees it writable again.
                    logger.warning("ledger.reopened", extra={"path": str(path)})
                    ledger.close()
                    ledger = _open(path, identity)
        except LedgerError as exc:  # could not reopen: the next delivery starts anew
            logger.error("ledger.writer_stopped", extra={"reason": str(exc)})
        except OSError:  # the parent is gone; what was committed stays committed
            pass
        finally:
            ledger.close()


def _open(path: Path, identity: tuple[int, int] | None) -> SqliteLedger:
    """The ledger at ``path``, if it is still the file the parent opened."""
    found = _identity(path)
    if identity is not None and found != identity:
        raise LedgerError(
            f"The ledger {path} is no longer the file hooklab serve opened (it was "
            f"{'replaced' if found else 'deleted or moved'}); restart serve so "
            "that it opens the file you mean."
        )
    return SqliteLedger(path)


def _arrivals(channel: socket.socket) -> Iterator[list[tuple[int, list[Incoming]]]]:
    """Each time, the batches that have arrived (at least one, waiting for it;
    at most about _MAX_COMMIT_BYTES of them, the rest in the next commit)."""
    buffer = bytearray()
    ended = False
    while True:
        if not ended and not _has_frame(buffer):
            ended = _receive(channel, buffer, wait=True)
        if not ended:
            ended = _receive(channel, buffer, wait=False)
        frames = _take_frames(buffer, _MAX_COMMIT_BYTES)
        if frames:
            yield [
                (sequence, [Incoming(*item) for item in items])
                for sequence, items in frames
            ]
        elif ended:  # the parent closed, or died, perhaps mid-frame
            return


def _receive(channel: socket.socket, buffer: bytearray, *, wait: bool) -> bool:
    """Read what has arrived into ``buffer`` (waiting for some if ``wait``);
    True once the parent has closed its end or is gone."""
    channel.setblocking(wait)
    try:
        while data := channel.recv(1 << 20):
            buffer += data
            channel.setblocking(False)
    except BlockingIOError:
        return False
    except ConnectionResetError:  # the parent died with our answers unread
        return True
    return True


def _commit(
    ledger: SqliteLedger, batches: list[tuple[int, list[Incoming]]]
) -> tuple[list[tuple[int, list[_Outcome], int]], bool]:
    """Commit all ``batches`` in one transaction, sync once, say how each went,
    and whether the ledger must be opened again (it was found read-only).

    Each reply is (sequence, outcomes, fsyncs made for it: 1 on the first reply
    of a sync, else 0).
    """
    items = [item for _, batch in batches for item in batch]
    outcomes, reopen = _write(ledger, items)
    synced = 0
    if any(not isinstance(outcome, str) for outcome in outcomes):
        try:
            ledger.sync()
            synced = 1
        except LedgerError as exc:  # committed, but not known to be on disk
            outcomes = [str(exc)] * len(items)

    replies = []
    start = 0
    for sequence, batch in batches:
        replies.append((sequence, outcomes[start : start + len(batch)], synced))
        start += len(batch)
        synced = 0
    return replies, reopen


def _write(ledger: SqliteLedger, items: list[Incoming]) -> tuple[list[_Outcome], bool]:
    """One outcome per item (when one cannot be stored, each is tried on its own),
    and whether the ledger refused to be written at all (read-only)."""
    try:
        recorded = ledger.write_many(items)
    except LedgerError as exc:
        if exc.per_item and len(items) > 1:
            outcomes: list[_Outcome] = []
            for item in items:
                outcome, reopen = _write(ledger, [item])
                outcomes += outcome
                if reopen:
                    return [str(exc)] * len(items), True
            return outcomes, False
        return [str(exc)] * len(items), _read_only(exc)
    assert recorded is not None  # a write that may wait always writes
    return [(r.new, r.received_at) for r in recorded], False


def _read_only(exc: LedgerError) -> bool:
    cause = exc.__cause__
    return (
        isinstance(cause, sqlite3.Error)
        and getattr(cause, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY
    )


if __name__ == "__main__":
    from hooklab.logfields import configure_logging

    # Ctrl-C in a terminal, or a service manager's SIGTERM, reaches the whole
    # process group; the child ends when its parent closes the socket instead, so
    # that what the parent is still waiting for gets committed and answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    # Its warnings reach the same stderr as the serving process's, in its layout.
    configure_logging(logging.WARNING, "%(asctime)s %(levelname)s %(name)s %(message)s")
    ledger_path, identity = pickle.loads(sys.stdin.buffer.read())
    main(int(sys.argv[1]), Path(ledger_path), identity)
