"""The ledger: a durable record of every webhook delivery, keyed by source and id.

``SqliteLedger`` keeps one SQLite file in WAL mode with ``synchronous=FULL``, so a
delivery that ``record`` returned for is on disk and survives a crash. The identity of
a delivery is ``(source, event_id)``: a repeat is counted, answered ``new=False`` and
the first copy is kept. Signature headers are never stored.

Issue 4 will add processing state, dead letters, group commit and a PostgreSQL backend
behind the same ``Ledger`` interface.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hooklab.errors import LedgerError

__all__ = ["Delivery", "Ledger", "Recorded", "SqliteLedger", "storable_headers"]

logger = logging.getLogger(__name__)

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
)
"""


@dataclass(frozen=True)
class Recorded:
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


class Ledger(Protocol):
    """What the receiver needs from a store of deliveries."""

    def record(
        self,
        source: str,
        event_id: str,
        event_type: str | None,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Recorded:
        """Store a delivery durably unless its (source, event_id) is known."""
        ...

    def deliveries(self, source: str | None = None) -> list[Delivery]:
        """Return stored deliveries in arrival order, optionally of one source."""
        ...

    def count(self) -> int:
        """Return how many distinct deliveries are stored."""
        ...

    def close(self) -> None:
        """Release the store; later calls raise LedgerError."""
        ...


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return ``headers`` lower-cased, without any signature or HMAC header."""
    lowered = {name.lower(): value for name, value in headers.items()}

    return {
        name: value
        for name, value in lowered.items()
        if "signature" not in name and "hmac" not in name
    }


class SqliteLedger:
    """A ledger in one SQLite file (WAL, synchronous=FULL), safe across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

        try:
            self._conn = self._open()
        except sqlite3.Error as exc:
            raise LedgerError(
                f"The ledger {self.path} cannot be opened: {exc}."
            ) from exc

    def __repr__(self) -> str:
        return f"SqliteLedger(path={str(self.path)!r})"

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def record(
        self,
        source: str,
        event_id: str,
        event_type: str | None,
        body: bytes,
        headers: Mapping[str, str],
    ) -> Recorded:
        """Store a delivery durably unless its (source, event_id) is known."""
        received_at = time.time()
        stored_headers = json.dumps(storable_headers(headers), sort_keys=True)

        with self._guard("record") as conn, conn:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO deliveries"
                " (source, event_id, event_type, received_at, body, headers)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (source, event_id, event_type, received_at, body, stored_headers),
            ).rowcount
            if inserted:
                return Recorded(new=True, received_at=received_at)

            return Recorded(
                new=False, received_at=_count_repeat(conn, source, event_id)
            )

    def deliveries(self, source: str | None = None) -> list[Delivery]:
        """Return stored deliveries in arrival order, optionally of one source."""
        query = (
            "SELECT source, event_id, event_type, received_at, body, headers, repeats"
            " FROM deliveries WHERE ? IS NULL OR source = ? ORDER BY rowid"
        )

        with self._guard("read") as conn:
            rows = conn.execute(query, (source, source)).fetchall()

        return [_delivery(row) for row in rows]

    def count(self) -> int:
        """Return how many distinct deliveries are stored."""
        with self._guard("count") as conn:
            (total,) = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        return int(total)

    def close(self) -> None:
        """Close the file; later calls raise LedgerError. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _open(self) -> sqlite3.Connection:
        # One connection shared under a lock: SQLite serialises writers anyway, and
        # the receiver calls from a thread pool, hence check_same_thread=False.
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            conn.close()
            raise LedgerError(f"The ledger {self.path} cannot use WAL mode ({mode}).")

        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(_SCHEMA)
        conn.commit()
        return conn

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and translate SQLite failures into LedgerError."""
        with self._lock:
            try:
                yield self._connection()
            except sqlite3.Error as exc:
                logger.error("ledger.failed", extra={"action": action})
                raise LedgerError(
                    f"The ledger {self.path} failed to {action}: {exc}."
                ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"The ledger {self.path} is closed; open a new one.")
        return self._conn


def _count_repeat(conn: sqlite3.Connection, source: str, event_id: str) -> float:
    """Count one more copy of a known delivery and return its first arrival time."""
    conn.execute(
        "UPDATE deliveries SET repeats = repeats + 1 WHERE source = ? AND event_id = ?",
        (source, event_id),
    )

    (received_at,) = conn.execute(
        "SELECT received_at FROM deliveries WHERE source = ? AND event_id = ?",
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
