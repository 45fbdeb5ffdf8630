"""The ledger: a durable record of every webhook delivery and of its processing.

``SqliteLedger`` keeps one SQLite file in WAL mode. A delivery that ``record`` or
``record_many`` returned for is on disk (its WAL frames synced) and survives a
crash or a power cut. The identity of an event is ``(source, event_id)``: a repeat
is counted, answered ``new=False`` and the first copy is kept. Signature headers
are never stored.

Each event also has a processing state, changed only through the methods below:

    pending ──claim──► processing ──finish──► done (or stale, or ignored)
       ▲                  │  ▲
       │                  │  └─ lease expired: claimed again
       └──── failed ◄─────┤ fail, attempts left (retried at ``next_at``)
                          └──── dead: fail with no attempts left (a dead letter)

    quarantined: stored but not processed (the body could not be decoded)

``requeue`` puts chosen events back to pending, which is how dead letters are replayed.
``record_many`` writes a whole batch in one transaction, so concurrent requests share
one commit; ``commits`` counts write transactions. The receiver splits it in two
(see ``hooklab.groupcommit``): ``write_many`` commits on the event loop without
waiting for the disk, and ``sync`` then makes every commit so far durable with one
fsync in a thread of its own.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from hooklab.errors import ConfigError, LedgerError

__all__ = [
    "DEFAULT_WAL_LIMIT_BYTES",
    "LOCK_WAIT_S",
    "STATUSES",
    "Claim",
    "Delivery",
    "EventState",
    "Incoming",
    "Ledger",
    "Recorded",
    "SqliteLedger",
    "Status",
    "check_ledger_file",
    "storable_headers",
]

logger = logging.getLogger(__name__)

Status = Literal[
    "pending",
    "processing",
    "done",
    "failed",
    "dead",
    "quarantined",
    "stale",
    "ignored",
]

#: Every processing status, in the order a report lists them.
STATUSES: tuple[Status, ...] = (
    "pending",
    "processing",
    "failed",
    "done",
    "stale",
    "ignored",
    "dead",
    "quarantined",
)

#: The most (source, event_id) pairs one ``claim`` can be limited to.
MAX_AMONG = 500

#: The statuses ``finish`` settles a claimed event in.
_FINISHED: tuple[Status, ...] = ("done", "stale", "ignored")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    source      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT,
    received_at REAL NOT NULL,
    body        BLOB NOT NULL,
    headers     TEXT NOT NULL,
    repeats     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, event_id)
);
CREATE TABLE IF NOT EXISTS object_versions (
    scope       TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    PRIMARY KEY (scope, object_id)
);
"""

# Processing state lives in the deliveries row itself: one insert per event keeps
# the acknowledgement path short. Columns are added to a ledger written before they
# existed; its deliveries then start pending.
_STATE_COLUMNS = (
    ("status", "TEXT NOT NULL DEFAULT 'pending'"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("next_at", "REAL NOT NULL DEFAULT 0"),
    ("lease_owner", "TEXT"),
    ("lease_until", "REAL"),
    ("last_error", "TEXT"),
    ("note", "TEXT"),
    ("updated_at", "REAL NOT NULL DEFAULT 0"),
)
_DUE_INDEX = "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at)"

_INSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_MANY = (
    "INSERT INTO deliveries (source, event_id, event_type, received_at,"
    " body, headers, status, next_at, note, updated_at) VALUES {rows}"
)
#: Failures caused by what was being stored rather than by the store itself.
_CONTENT_ERRORS = (
    UnicodeEncodeError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
)
#: How long a write waits for another process's lock before it fails. A sender
#: waits for the acknowledgement only seconds (Shopify 5, GitHub 10), so a
#: delivery the ledger cannot take is better refused (503, retried) than held.
LOCK_WAIT_S = 5.0
#: The WAL size past which the ledger starts it over (see ``_Checkpointer``).
DEFAULT_WAL_LIMIT_BYTES = 16 * 1024 * 1024
_KNOWN_IDS = "SELECT event_id FROM deliveries WHERE source = ? AND event_id IN ({ids})"
_MAX_ROWS_PER_INSERT = 500
_DELIVERY_COLUMNS = "source, event_id, event_type, received_at, body, headers, repeats"
_EVENT_COLUMNS = (
    "source, event_id, event_type, status, attempts, received_at,"
    " updated_at, next_at, lease_until, last_error, note, repeats"
)


class Incoming(NamedTuple):
    """One verified delivery on its way into the ledger.

    ``quarantine`` is the reason the body could not be decoded, or None. Like
    ``Recorded`` it is a named tuple, not a frozen dataclass, because one is built
    for every delivery and a tuple is built in a third of the time.
    """

    source: str
    event_id: str
    event_type: str | None
    body: bytes
    headers: Mapping[str, str]
    quarantine: str | None = None


class Recorded(NamedTuple):
    """The outcome of ``record``: whether the delivery was new, and when it arrived."""

    new: bool
    received_at: float


@dataclass(frozen=True)
class Delivery:
    """One stored delivery; ``repeats`` counts the copies that arrived after it."""

    source: str
    event_id: str
    event_type: str | None
    received_at: float
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    repeats: int = 0


@dataclass(frozen=True)
class Claim:
    """An event a worker holds under a lease until ``lease_until``.

    ``attempt`` counts this one: 1 for the first try.
    """

    delivery: Delivery
    worker: str
    attempt: int
    lease_until: float

    @property
    def key(self) -> tuple[str, str]:
        """The event's identity, ``(source, event_id)``."""
        return (self.delivery.source, self.delivery.event_id)


@dataclass(frozen=True)
class EventState:
    """One event's processing state, as ``hooklab ledger list`` shows it."""

    source: str
    event_id: str
    event_type: str | None
    status: Status
    attempts: int
    received_at: float
    updated_at: float
    next_at: float
    lease_until: float | None
    last_error: str | None
    note: str | None
    repeats: int


class Ledger(Protocol):
    """What the receiver, the workers and the CLI need from a store of events.

    ``SqliteLedger`` is the embedded implementation; a PostgreSQL one fulfils the
    same methods with the same meaning.
    """

    # Only the SQLite backend exists so far: no PostgreSQL server is part of the
    # embedded default, and its claim would need FOR UPDATE SKIP LOCKED semantics
    # tested against a real server, which this project does not run yet.

    @property
    def commits(self) -> int:
        """How many write transactions this handle has committed."""
        ...

    def record(
        self,
        source: str,
        event_id: str,
        event_type: str | None,
        body: bytes,
        headers: Mapping[str, str],
        *,
        quarantine: str | None = None,
    ) -> Recorded:
        """Store a delivery durably unless its (source, event_id) is known."""
        ...

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
        """Store a batch durably in one commit; one outcome per item, in order."""
        ...

    def write_many(
        self, items: Sequence[Incoming], *, wait: bool = True
    ) -> list[Recorded] | None:
        """Commit a batch, visible at once but durable only after the next ``sync``.

        With ``wait=False`` it never waits for another writer: it returns None
        when one holds the ledger, and nothing is written.
        """
        ...

    def sync(self) -> None:
        """Make every commit so far durable (what ``record_many`` waits for)."""
        ...

    def deliveries(self, source: str | None = None) -> list[Delivery]:
        """Return stored deliveries in arrival order, optionally of one source."""
        ...

    def delivery(self, source: str, event_id: str) -> Delivery | None:
        """Return one stored delivery, or None if the ledger has no such event."""
        ...

    def count(self) -> int:
        """Return how many distinct deliveries are stored."""
        ...

    def claim(
        self,
        worker: str,
        *,
        now: float,
        lease_s: float,
        limit: int = 1,
        among: Sequence[tuple[str, str]] | None = None,
    ) -> list[Claim]:
        """Lease up to ``limit`` due events to ``worker``, oldest first.

        ``among`` limits the claim to those (source, event_id) pairs.
        """
        ...

    def finish(
        self, claim: Claim, *, now: float, status: Status = "done", note: str = ""
    ) -> bool:
        """Mark a claimed event done (or stale); False if the lease was lost."""
        ...

    def fail(
        self, claim: Claim, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        """Schedule a retry at ``retry_at``, or bury the event when it is None."""
        ...

    def advance_version(self, scope: str, object_id: str, version: object) -> bool:
        """Move an object's last applied version forward; False if it is older."""
        ...

    def events(
        self,
        *,
        status: Status | None = None,
        since: float | None = None,
        event_id: str | None = None,
    ) -> list[EventState]:
        """Return processing states in arrival order, filtered as asked."""
        ...

    def requeue(self, keys: Iterable[tuple[str, str]], *, now: float) -> int:
        """Put the given events back to pending with fresh attempts; return how many."""
        ...

    def release(self, worker: str, *, now: float) -> int:
        """Hand back ``worker``'s claims it never ran: pending again, the attempt
        uncounted. Return how many (an interrupted run calls this)."""
        ...

    def stats(self) -> dict[str, int]:
        """Return how many events have each status (every status, zeros included)."""
        ...

    def next_due(self) -> float | None:
        """When the earliest waiting event becomes due, or None if none waits."""
        ...

    def close(self) -> None:
        """Release the store; later calls raise LedgerError."""
        ...


#: Headers that carry a sender's credentials; the ledger never stores them.
_CREDENTIAL_HEADERS = frozenset({"cookie", "set-cookie"})
_CREDENTIAL_WORDS = (
    "signature",
    "hmac",
    "secret",
    "password",
    "auth",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "session",
)


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return ``headers`` lower-cased, without signatures or credentials.

    Cookies and any header whose name says signature, HMAC, secret, password,
    auth, token, API key or session are left out (Authorization, X-Gitlab-Token,
    X-Api-Key, X-Shopify-Access-Token ...), except idempotency ids such as
    Twilio's I-Twilio-Idempotency-Token: a ledger file is copied, shared and read
    by more people than a credential should be.
    """
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        storable = _STORABLE.get(lowered)
        if storable is None:
            storable = _storable_name(lowered)
            if len(_STORABLE) < _MAX_REMEMBERED_NAMES:
                _STORABLE[lowered] = storable
        if storable:
            kept[lowered] = value
    return kept


# Every delivery's headers pass through storable_headers, and senders use the
# same few dozen names, so the decision is remembered per name (up to a bound, as
# a sender may make names up).
_STORABLE: dict[str, bool] = {}
_MAX_REMEMBERED_NAMES = 4096


def _storable_name(name: str) -> bool:
    return (
        "idempotency" in name  # an id (Twilio's), needed to replay the event
        or name.endswith("-timestamp")  # when it was signed (Zendesk's), not how
        or (
            name not in _CREDENTIAL_HEADERS
            and not any(word in name for word in _CREDENTIAL_WORDS)
        )
    )


class SqliteLedger:
    """A ledger in one SQLite file (WAL mode), safe across threads.

    Every write method returns only once its commit is on disk. SQLite's
    ``synchronous=FULL`` would fsync the WAL inside each commit, holding the write
    lock meanwhile; here the connection commits with ``synchronous=NORMAL`` (no
    fsync) and ``sync`` then fsyncs the WAL file itself, after the lock is
    released. That is the same sync of the same file, so a commit is as durable
    once ``sync`` returns, and one fsync covers every commit made before it.

    ``clock`` stamps arrival times (``time.time`` unless a test injects one);
    a background thread checkpoints the WAL every ``checkpoint_every_s`` seconds
    and starts it over whenever it has grown past ``wal_limit_bytes``.

    Several processes may open the same file: SQLite serialises their writers and a
    claimed event is leased to one worker at a time.

    ``read_only=True`` opens an existing ledger for reading only (``ledger stats``
    and ``list``): nothing in the file changes, no checkpoints run, and a writer
    holding the file does not block it. Check a file you were handed with
    ``check_ledger_file`` first.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        checkpoint_every_s: float = 1.0,
        wal_limit_bytes: int = DEFAULT_WAL_LIMIT_BYTES,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._commits = 0
        self._syncs = 0
        self._wal_fd: int | None = None  # the -wal file, for sync; None when closed
        self._sync_lock = threading.Lock()  # keeps close from closing it mid-fsync
        self._checkpointer: _Checkpointer | None = None

        try:
            self._conn = self._open_read_only() if read_only else self._open()
        except sqlite3.Error as exc:
            raise LedgerError(
                f"The ledger {self.path} cannot be opened: {exc}."
            ) from exc
        if not read_only:
            self._checkpointer = _Checkpointer(
                self.path, checkpoint_every_s, wal_limit_bytes
            )

    def __repr__(self) -> str:
        return f"SqliteLedger(path={str(self.path)!r})"

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def commits(self) -> int:
        """How many write transactions this handle has committed."""
        return self._commits

    @property
    def syncs(self) -> int:
        """How many times this handle has synced its commits to disk."""
        return self._syncs

    def record(
        self,
        source: str,
        event_id: str,
        event_type: str | None,
        body: bytes,
        headers: Mapping[str, str],
        *,
        quarantine: str | None = None,
    ) -> Recorded:
        """Store a delivery durably unless its (source, event_id) is known."""
        item = Incoming(source, event_id, event_type, body, headers, quarantine)

        return self.record_many([item])[0]

    def record_many(self, items: Sequence[Incoming]) -> list[Recorded]:
        """Store a batch durably in one commit; one outcome per item, in order.

        Two items with the same identity in one batch are one new event and one
        repeat, exactly as if they had come one after the other.
        """
        outcomes = self.write_many(items)
        assert outcomes is not None  # a write that may wait always writes
        self.sync()
        return outcomes

    def write_many(
        self, items: Sequence[Incoming], *, wait: bool = True
    ) -> list[Recorded] | None:
        """Commit a batch in one transaction without waiting for the disk.

        The batch is visible to readers at once and durable once ``sync`` has
        returned. With ``wait=False`` (the event loop's call) it returns None,
        having written nothing, when another thread or process holds the write
        lock, instead of blocking until it is free.
        """
        received_at = self.clock()
        outcomes: list[Recorded] = []

        if not self._lock.acquire(blocking=wait):
            return None
        try:
            with self._failures("record") as conn:
                if not _begin(conn, wait=wait):
                    return None
                try:
                    for start in range(0, len(items), _MAX_ROWS_PER_INSERT):
                        chunk = items[start : start + _MAX_ROWS_PER_INSERT]
                        outcomes += _insert_many(conn, chunk, received_at)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._commit(conn)
        finally:
            self._lock.release()
        return outcomes

    def sync(self) -> None:
        """Wait until every commit made so far is on disk: one fsync of the WAL.

        Also starts the WAL over when the checkpointer found it over its limit
        (see ``_Checkpointer``); that waits for the write lock, so it is done here,
        off the event loop, rather than at a commit.
        """
        with self._sync_lock:
            if self._wal_fd is None:
                raise LedgerError(f"The ledger {self.path} is closed; open a new one.")
            try:
                os.fsync(self._wal_fd)
                self._syncs += 1
            except OSError as exc:
                logger.error("ledger.failed", extra={"action": "sync"})
                raise LedgerError(
                    f"The ledger {self.path} could not be synced to disk: "
                    f"{exc.strerror}."
                ) from exc

        if self._checkpointer is not None and self._checkpointer.over_limit:
            with self._guard("checkpoint") as conn:
                self._restart_wal(conn)

    def deliveries(self, source: str | None = None) -> list[Delivery]:
        """Return stored deliveries in arrival order, optionally of one source."""
        query = (
            "SELECT source, event_id, event_type, received_at, body, headers, repeats"
            " FROM deliveries WHERE ? IS NULL OR source = ? ORDER BY rowid"
        )

        with self._guard("read") as conn:
            rows = conn.execute(query, (source, source)).fetchall()

        return [_delivery(row) for row in rows]

    def delivery(self, source: str, event_id: str) -> Delivery | None:
        """Return one stored delivery, or None if the ledger has no such event."""
        query = (
            "SELECT source, event_id, event_type, received_at, body, headers, repeats"
            " FROM deliveries WHERE source = ? AND event_id = ?"
        )

        with self._guard("read") as conn:
            row = conn.execute(query, (source, event_id)).fetchone()

        return None if row is None else _delivery(row)

    def count(self) -> int:
        """Return how many distinct deliveries are stored."""
        with self._guard("count") as conn:
            (total,) = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        return int(total)

    def claim(
        self,
        worker: str,
        *,
        now: float,
        lease_s: float,
        limit: int = 1,
        among: Sequence[tuple[str, str]] | None = None,
    ) -> list[Claim]:
        """Lease up to ``limit`` due events to ``worker``, oldest first.

        Due means pending, failed with its retry time reached, or processing under a
        lease that expired (its worker died); each claim counts one attempt.
        ``among`` limits the claim to those (source, event_id) pairs, at most
        ``MAX_AMONG`` of them (a replay of chosen events).
        """
        lease_until = now + lease_s
        chosen = ""
        keys: tuple[str, ...] = ()
        if among is not None:
            if len(among) > MAX_AMONG:
                raise LedgerError(f"claim takes at most {MAX_AMONG} pairs in among.")
            pairs = ", ".join(["(?, ?)"] * len(among)) or "(NULL, NULL)"
            chosen = f" AND (source, event_id) IN (VALUES {pairs})"
            keys = tuple(part for pair in among for part in pair)

        with self._write("claim") as conn:
            rows = conn.execute(
                "UPDATE deliveries SET status = 'processing', attempts = attempts + 1,"
                " lease_owner = ?, lease_until = ?, updated_at = ?"
                " WHERE rowid IN (SELECT rowid FROM deliveries"
                "   WHERE ((status IN ('pending', 'failed') AND next_at <= ?)"
                f"      OR (status = 'processing' AND lease_until <= ?)){chosen}"
                "   ORDER BY next_at LIMIT ?)"
                f" RETURNING {_DELIVERY_COLUMNS}, attempts",
                (worker, lease_until, now, now, now, *keys, limit),
            ).fetchall()
            claims = [
                Claim(_delivery(row[:-1]), worker, int(row[-1]), lease_until)
                for row in rows
            ]

        return sorted(claims, key=lambda c: c.delivery.received_at)

    def finish(
        self, claim: Claim, *, now: float, status: Status = "done", note: str = ""
    ) -> bool:
        """Mark a claimed event done, stale or ignored; False if the lease was lost.

        ``ignored`` is an event no workflow handles: settled, with nothing run.
        """
        if status not in _FINISHED:
            raise LedgerError(
                f"finish takes status done, stale or ignored, not {status!r}."
            )

        # A note given replaces the one kept; none given keeps it (a replayed
        # event keeps the error it was replayed after).
        return self._settle(
            claim,
            "status = ?, note = COALESCE(?, note), last_error = NULL",
            (status, note or None),
            now,
        )

    def fail(
        self, claim: Claim, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        """Schedule a retry at ``retry_at``, or bury the event when it is None."""
        if retry_at is None:
            return self._settle(claim, "status = 'dead', last_error = ?", (error,), now)

        return self._settle(
            claim,
            "status = 'failed', last_error = ?, next_at = ?",
            (error, retry_at),
            now,
        )

    def advance_version(self, scope: str, object_id: str, version: object) -> bool:
        """Move an object's last applied version forward; False if it is older.

        Versions compare as numbers or timestamps when both sides read as one,
        otherwise as text; an equal version is not older.
        """
        with self._write("order") as conn:
            row = conn.execute(
                "SELECT version FROM object_versions WHERE scope = ? AND object_id = ?",
                (scope, object_id),
            ).fetchone()
            if row is not None and _older(version, json.loads(row[0])):
                return False

            conn.execute(
                "INSERT OR REPLACE INTO object_versions VALUES (?, ?, ?)",
                (scope, object_id, json.dumps(version)),
            )
            return True

    def events(
        self,
        *,
        status: Status | None = None,
        since: float | None = None,
        event_id: str | None = None,
    ) -> list[EventState]:
        """Return processing states in arrival order, filtered as asked."""
        query = (
            f"SELECT {_EVENT_COLUMNS} FROM deliveries"
            " WHERE (? IS NULL OR status = ?) AND (? IS NULL OR received_at >= ?)"
            " AND (? IS NULL OR event_id = ?) ORDER BY rowid"
        )
        params = (status, status, since, since, event_id, event_id)

        with self._guard("read") as conn:
            rows = conn.execute(query, params).fetchall()

        return [EventState(*row) for row in rows]

    def iter_events(
        self, *, status: Status | None = None, page: int = 1000
    ) -> Iterator[EventState]:
        """Yield processing states in arrival order, ``page`` rows at a time.

        For listing a large ledger: memory stays flat, and no read is held open
        between pages, so writers are not kept waiting.
        """
        query = (
            f"SELECT rowid, {_EVENT_COLUMNS} FROM deliveries"
            " WHERE rowid > ? AND (? IS NULL OR status = ?) ORDER BY rowid LIMIT ?"
        )
        last = 0
        while True:
            with self._guard("read") as conn:
                rows = conn.execute(query, (last, status, status, page)).fetchall()
            if not rows:
                return
            for row in rows:
                yield EventState(*row[1:])
            last = rows[-1][0]

    def requeue(self, keys: Iterable[tuple[str, str]], *, now: float) -> int:
        """Put the given events back to pending with fresh attempts; return how many.

        The event keeps its identity, so every action sees the same idempotency
        key as on its first run. A quarantined event stays as it is: its body
        could not be decoded, so no action could run on it.
        """
        rows = [(now, now, source, event_id) for source, event_id in keys]
        changed = 0
        # In transactions of a thousand, so a replay of many events never holds
        # the write lock long enough to make a running receiver wait LOCK_WAIT_S.
        for start in range(0, len(rows), 1000):
            with self._write("requeue") as conn:
                changed += conn.executemany(
                    "UPDATE deliveries SET status = 'pending', attempts = 0,"
                    " next_at = ?, lease_owner = NULL, lease_until = NULL,"
                    " updated_at = ?, note = CASE WHEN last_error IS NULL THEN note"
                    " ELSE 'Replayed after ' || attempts || ' attempt(s); the last"
                    " failed: ' || last_error END"
                    " WHERE source = ? AND event_id = ? AND status != 'quarantined'",
                    rows[start : start + 1000],
                ).rowcount
        return changed

    def release(self, worker: str, *, now: float) -> int:
        """Hand back ``worker``'s claims it never ran: pending again, the attempt
        uncounted. Return how many (an interrupted run calls this)."""
        with self._write("release") as conn:
            changed = conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = attempts - 1,"
                " next_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?"
                " WHERE status = 'processing' AND lease_owner = ?",
                (now, now, worker),
            ).rowcount
        return int(changed)

    def stats(self) -> dict[str, int]:
        """Return how many events have each status (every status, zeros included)."""
        with self._guard("read") as conn:
            rows = conn.execute(
                "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
            ).fetchall()

        counts = {str(status): int(n) for status, n in rows}
        return {status: counts.get(status, 0) for status in STATUSES}

    def next_due(self) -> float | None:
        """When the earliest waiting event becomes due, or None if none waits."""
        with self._guard("read") as conn:
            (waiting,) = conn.execute(
                "SELECT MIN(next_at) FROM deliveries"
                " WHERE status IN ('pending', 'failed')"
            ).fetchone()
            (leased,) = conn.execute(
                "SELECT MIN(lease_until) FROM deliveries WHERE status = 'processing'"
            ).fetchone()

        due = [float(t) for t in (waiting, leased) if t is not None]
        return min(due) if due else None

    def close(self) -> None:
        """Close the file; later calls raise LedgerError. Closing twice is harmless."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._sync_lock:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None

    def _settle(
        self, claim: Claim, assignments: str, values: tuple[Any, ...], now: float
    ) -> bool:
        """Apply ``assignments`` if ``claim`` still holds the lease; say if it did."""
        source, event_id = claim.key

        with self._write("settle") as conn:
            changed = conn.execute(
                f"UPDATE deliveries SET {assignments}, lease_owner = NULL,"
                " lease_until = NULL, updated_at = ?"
                " WHERE source = ? AND event_id = ? AND status = 'processing'"
                " AND lease_owner = ? AND attempts = ?",
                (*values, now, source, event_id, claim.worker, claim.attempt),
            ).rowcount

        if not changed:
            logger.warning("ledger.lease_lost", extra={"event_id": event_id})
        return bool(changed)

    def _open(self) -> sqlite3.Connection:
        # One connection shared under a lock: SQLite serialises writers anyway, and
        # the receiver calls from other threads, hence check_same_thread=False.
        # isolation_level=None: transactions are begun explicitly in _write.
        conn = sqlite3.connect(
            self.path,
            check_same_thread=False,
            timeout=LOCK_WAIT_S,
            isolation_level=None,
        )
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            conn.close()
            raise LedgerError(f"The ledger {self.path} cannot use WAL mode ({mode}).")

        # Commits do not fsync; sync() does, on the WAL file opened below (see
        # the class docstring). NORMAL still syncs the WAL before a checkpoint
        # and when it starts over.
        conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints copy the WAL into the database file; a background thread
        # does that (see _Checkpointer), so no commit of a delivery waits for one.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        _add_state_columns(conn)
        self._wal_fd = _open_wal(self.path)
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        conn = _connect_read_only(self.path, same_thread=False)
        conn.execute("PRAGMA query_only=1")
        return conn

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One durable write transaction: BEGIN IMMEDIATE, then COMMIT or ROLLBACK;
        the commit is synced after the lock is released."""
        with self._guard(action) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._commit(conn)
        self.sync()

    def _commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")
        self._commits += 1

    def _restart_wal(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL's last frames into the database and start it over (lock held).

        A failure is only logged: the deliveries are committed either way, and the
        next passive checkpoint asks again.
        """
        if self._checkpointer is not None:
            self._checkpointer.over_limit = False
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)")
        except sqlite3.Error:
            logger.warning("ledger.checkpoint_failed", extra={"path": str(self.path)})

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and translate SQLite failures into LedgerError."""
        with self._lock, self._failures(action) as conn:
            yield conn

    @contextmanager
    def _failures(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, with SQLite failures translated into LedgerError.

        A string with no UTF-8 form (a lone surrogate) cannot be bound to a
        statement; that is a failure to store too, not a crash.
        """
        try:
            yield self._connection()
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            logger.error("ledger.failed", extra={"action": action})
            raise LedgerError(
                f"The ledger {self.path} failed to {action}: {exc}.",
                per_item=isinstance(exc, _CONTENT_ERRORS),
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"The ledger {self.path} is closed; open a new one.")
        return self._conn


def _begin(conn: sqlite3.Connection, *, wait: bool) -> bool:
    """BEGIN IMMEDIATE; without ``wait``, False at once if another connection writes."""
    if wait:
        conn.execute("BEGIN IMMEDIATE")
        return True

    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
    return True


def _open_wal(path: Path) -> int:
    """A descriptor of the ledger's -wal file (for fsync), its folder entry synced.

    SQLite created the file when the connection first wrote in WAL mode, and
    deletes it only when the last connection to the ledger closes, which is never
    while this ledger is open. The folder is synced once so that the file itself
    survives a power cut.
    """
    fd = os.open(f"{path}-wal", os.O_RDONLY)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return fd


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _connect_read_only(path: Path, *, same_thread: bool = True) -> sqlite3.Connection:
    """A read-only connection, also to a ledger in a folder hooklab cannot write.

    Reading a WAL database needs its -shm file, which SQLite creates beside it;
    where that is impossible (a read-only folder, a copy handed over) the file is
    opened as immutable. Known shortcoming: an immutable open does not see
    commits still in a -wal file, which a ledger closed cleanly does not have.
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, timeout=LOCK_WAIT_S, check_same_thread=same_thread
    )
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        conn.close()
        return sqlite3.connect(
            f"{uri}?immutable=1", uri=True, check_same_thread=same_thread
        )
    return conn


def check_ledger_file(path: str | Path, *, empty_ok: bool = False) -> None:
    """Refuse, without changing it, a file that is not a hooklab ledger.

    The commands that are handed a ledger path (``serve``, ``ledger``, ``replay``,
    ``backfill``) call this before opening it, so another application's database,
    or any other file, is named and left alone instead of being turned into a
    ledger. A path that does not exist yet passes: a new ledger is made there; so
    does an empty file when ``empty_ok`` (a command that writes makes one in it).
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        folder = file.parent
        if not folder.is_dir():
            raise ConfigError(
                f"The folder {folder} for the ledger {file} does not exist; create "
                "it first, or give a path in a folder that does."
            ) from None
        return
    except OSError as exc:  # a name too long, a folder hooklab may not enter
        raise ConfigError(
            f"{file} cannot be used as a ledger: {exc.strerror}."
        ) from None
    if not stat.S_ISREG(mode):  # a FIFO would block the open below
        raise ConfigError(
            f"{file} is not a regular file, so it is not a hooklab ledger; hooklab "
            "left it unchanged."
        )
    with file.open("rb") as stream:
        magic = stream.read(len(_SQLITE_MAGIC))
    if not magic and empty_ok:
        return
    if magic != _SQLITE_MAGIC:
        what = "is empty" if not magic else "is not a SQLite database"
        raise ConfigError(
            f"{file} {what}, so it is not a hooklab ledger; hooklab left it unchanged. "
            "Give the path of a ledger that hooklab serve or backfill wrote, or a "
            "path that does not exist yet for a new one."
        )

    try:
        conn = _connect_read_only(file)
        try:
            rows = conn.execute("PRAGMA table_info(deliveries)").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(
            f"{file} cannot be read as a SQLite database: {exc}."
        ) from None
    columns = {row[1] for row in rows}
    if not {"source", "event_id", "body", "received_at"} <= columns:
        raise ConfigError(
            f"{file} is a SQLite database but not a hooklab ledger (it has no "
            "deliveries table of hooklab's); hooklab left it unchanged."
        )


class _Checkpointer:
    """A thread that checkpoints the WAL every few seconds on its own connection.

    A passive checkpoint never blocks writers, and SQLite syncs the WAL before it
    copies any of it, so durability does not depend on it. SQLite starts the
    WAL over only after a checkpoint that copied every frame, which a passive one
    never manages while writes arrive without pause; under sustained load the WAL
    would grow without end (about 30 MB/s at 14,000 deliveries a second). So when
    a passive checkpoint leaves the WAL over ``wal_limit_bytes`` it raises
    ``over_limit``, and the ledger's next ``sync`` starts the WAL over itself:
    by then only the frames written since the passive checkpoint are left to
    copy, a short pause for the commits waiting on that sync. A restarted
    WAL keeps its size and is overwritten from the start, and a sync that does
    not grow the file is cheaper: a test writing without pause stored about
    40,000 rows a second this way, 30,000 when the WAL was truncated instead and
    23,000 when it grew without end.
    """

    def __init__(self, path: Path, every_s: float, wal_limit_bytes: int) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._every_s = every_s
        self._wal_limit_bytes = wal_limit_bytes
        self.over_limit = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="hooklab-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the thread after one last checkpoint."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(10)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(self._every_s):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            logger.warning("ledger.checkpoint_failed", extra={"path": str(self._path)})
        self.over_limit = self._wal_bytes() > self._wal_limit_bytes

    def _wal_bytes(self) -> int:
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0


def _add_state_columns(conn: sqlite3.Connection) -> None:
    """Add the processing-state columns and index where the file lacks them."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(deliveries)")}
    missing = [(name, kind) for name, kind in _STATE_COLUMNS if name not in have]

    conn.execute("BEGIN IMMEDIATE")
    for name, kind in missing:
        conn.execute(f"ALTER TABLE deliveries ADD COLUMN {name} {kind}")
    conn.execute(_DUE_INDEX)
    conn.execute("COMMIT")


def _insert_many(
    conn: sqlite3.Connection, items: Sequence[Incoming], received_at: float
) -> list[Recorded]:
    """Insert a chunk's new events; count every known identity as a repeat.

    The batch costs two statements whatever its size: one query for the ids
    already stored, one insert for the rest. The writer thread gives up the GIL
    for each statement step, so fewer steps leave more of it to the event loop
    (an INSERT ... RETURNING stepped once per row). Under BEGIN IMMEDIATE no other
    writer can store an id between the query and the insert.
    """
    known = _known_ids(conn, items)
    rows = []
    repeats = []  # positions of copies of an event already stored or in this chunk
    outcomes = []

    for position, item in enumerate(items):
        key = (item.source, item.event_id)
        if key in known:
            repeats.append(position)
            outcomes.append(Recorded(new=False, received_at=received_at))
            continue
        known.add(key)
        rows.append(_row(item, received_at))
        outcomes.append(Recorded(new=True, received_at=received_at))

    if rows:
        statement = _INSERT_MANY.format(rows=", ".join([_INSERT_ROW] * len(rows)))
        conn.execute(statement, [value for row in rows for value in row])
    for position in repeats:  # after the insert, so a copy in this chunk is found
        item = items[position]
        first = _count_repeat(conn, item.source, item.event_id)
        outcomes[position] = Recorded(new=False, received_at=first)
    return outcomes


def _known_ids(
    conn: sqlite3.Connection, items: Sequence[Incoming]
) -> set[tuple[str, str]]:
    """The identities among ``items`` that the ledger already holds."""
    by_source: dict[str, list[str]] = {}
    for item in items:
        by_source.setdefault(item.source, []).append(item.event_id)

    known: set[tuple[str, str]] = set()
    for source, ids in by_source.items():
        statement = _KNOWN_IDS.format(ids=", ".join("?" * len(ids)))
        known.update(
            (source, str(event_id))
            for (event_id,) in conn.execute(statement, [source, *ids])
        )
    return known


#: Built once: json.dumps with an option builds a new encoder on every call.
_HEADERS_JSON = json.JSONEncoder(sort_keys=True)


def _row(item: Incoming, received_at: float) -> tuple[Any, ...]:
    headers = _HEADERS_JSON.encode(storable_headers(item.headers))
    status = "pending" if item.quarantine is None else "quarantined"

    return (
        item.source,
        item.event_id,
        item.event_type,
        received_at,
        item.body,
        headers,
        status,
        received_at,
        item.quarantine,
        received_at,
    )


def _count_repeat(conn: sqlite3.Connection, source: str, event_id: str) -> float:
    """Count one more copy of a known delivery and return its first arrival time."""
    (received_at,) = conn.execute(
        "UPDATE deliveries SET repeats = repeats + 1 WHERE source = ? AND event_id = ?"
        " RETURNING received_at",
        (source, event_id),
    ).fetchone()
    return float(received_at)


def _delivery(row: Any) -> Delivery:
    source, event_id, event_type, received_at, body, headers, repeats = row

    return Delivery(
        source=str(source),
        event_id=str(event_id),
        event_type=None if event_type is None else str(event_type),
        received_at=float(received_at),
        body=bytes(body),
        headers=json.loads(str(headers)),
        repeats=int(repeats),
    )


def _older(version: object, applied: object) -> bool:
    """Whether ``version`` comes before ``applied``."""
    left, right = _comparable(version), _comparable(applied)
    if isinstance(left, float) and isinstance(right, float):
        return left < right
    return str(version) < str(applied)


def _comparable(version: object) -> float | str:
    """A number for numbers, numeric text and ISO-8601 timestamps; else the text."""
    if isinstance(version, int | float) and not isinstance(version, bool):
        return float(version)

    text = str(version)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return text
