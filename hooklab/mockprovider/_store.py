"""The mock provider's data: events, orders and invoices, in memory, thread-safe.

Events are kept oldest first with their creation time, so a list can start after
a cursor and at a time. Orders and invoices are kept in creation order; creating
an order or an invoice also records its ``*.created`` event, whose data names the
object (``{"object": "order", "id": ...}``) the way a thin webhook payload does.
Idempotency keys remember the first answer to a creation, as Stripe's do.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Conflict", "Store"]

KINDS = ("order", "invoice")


class Conflict(Exception):
    """An idempotency key reused with a different request body."""


@dataclass(frozen=True)
class _Remembered:
    fingerprint: str
    answer: dict[str, Any]


class Store:
    """Every resource the provider serves, behind one lock."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._created: list[float] = []
        self._positions: dict[str, int] = {}
        self._objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self._keys: dict[str, _Remembered] = {}

    def create_event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new event and return a copy of it."""
        with self._lock:
            return dict(self._add_event(event_type, data))

    def create(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Store a new order or invoice, record its ``<kind>.created`` event."""
        with self._lock:
            return dict(self._create(kind, fields))

    def create_once(
        self, kind: str, fields: dict[str, Any], key: str
    ) -> tuple[dict[str, Any], bool]:
        """Create unless ``key`` was seen; return the object and whether it is new.

        Raises Conflict when ``key`` was used before with different fields.
        """
        fingerprint = hashlib.sha256(
            json.dumps(fields, sort_keys=True).encode()
        ).hexdigest()

        with self._lock:
            seen = self._keys.get(key)
            if seen is not None and seen.fingerprint != fingerprint:
                raise Conflict(key)
            if seen is not None:
                return dict(seen.answer), False
            created = self._create(kind, fields)
            self._keys[key] = _Remembered(fingerprint, dict(created))
            return dict(created), True

    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """One order or invoice by id, or None."""
        with self._lock:
            found = self._objects[kind].get(object_id)
        return None if found is None else dict(found)

    def count(self, kind: str) -> int:
        """How many orders or invoices exist."""
        with self._lock:
            return len(self._objects[kind])

    def slice(
        self, kind: str, start: int, size: int
    ) -> tuple[list[dict[str, Any]], int]:
        """``size`` objects from position ``start``, and how many there are."""
        with self._lock:
            values = list(self._objects[kind].values())
        return [dict(o) for o in values[start : start + size]], len(values)

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of every event, oldest first."""
        with self._lock:
            return [dict(event) for event in self._events]

    def page(
        self, after: str | None, limit: int, since: float | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` events after the id ``after`` and created at ``since``
        or later, and whether more exist.

        Raises ValueError when ``after`` names no event.
        """
        with self._lock:
            if after is not None and after not in self._positions:
                raise ValueError(f"after names no known event: {after!r}.")
            start = 0 if after is None else self._positions[after] + 1
            if since is not None:
                start = max(start, bisect.bisect_left(self._created, since))

            chosen = self._events[start : start + limit]
            has_more = start + limit < len(self._events)
        return [dict(event) for event in chosen], has_more

    def _create(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create under the lock held by the caller."""
        objects = self._objects[kind]
        prefix = "ord" if kind == "order" else "in"
        obj = {
            **fields,
            "id": f"{prefix}_{len(objects) + 1:08d}",
            "object": kind,
            "created": self._wall(),
        }
        objects[obj["id"]] = obj

        self._add_event(f"{kind}.created", {"object": kind, "id": obj["id"]})
        return obj

    def _add_event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append an event under the lock held by the caller."""
        # Creation times never go backwards, so the list stays sorted for bisect.
        created = max(self._wall(), self._created[-1] if self._created else 0.0)
        event_id = f"evt_{len(self._events) + 1:08d}"
        event = {
            "id": event_id,
            "type": event_type,
            "created": created,
            "data": data,
        }
        self._positions[event_id] = len(self._events)
        self._events.append(event)
        self._created.append(created)
        return event
