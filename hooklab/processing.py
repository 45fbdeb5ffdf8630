"""Workers: process stored events apart from acknowledging them.

A ``Processor`` claims due events from the ledger under a lease, runs the actions of
every ``Pipeline`` (an engagement workflow) that handles the event, and settles it:

- every action returned: the event is done;
- an action raised: the event is retried after an exponential backoff with full
  jitter (``RetryPolicy``), until ``max_attempts`` is spent; then it is dead, with
  its last error, until ``hooklab replay`` puts it back;
- the worker died: its lease expires and another worker claims the event again,
  with the same idempotency key;
- a pipeline with an ``Ordering`` key sees an event older than the version already
  applied to the same object: that pipeline is skipped, and if none is left the
  event is recorded as stale rather than applied.

``run_until_idle`` processes in the calling thread (tests, ``hooklab replay``);
``start`` runs worker threads until ``stop``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hooklab.actions import Action, Event
from hooklab.errors import ConfigError, LedgerError
from hooklab.events import decode_body
from hooklab.ledger import Claim, Ledger
from hooklab.metrics import Metrics

__all__ = ["Ordering", "Pipeline", "Processor", "RetryPolicy"]

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a failing event is tried again.

    Attempt ``n`` (from 1) that fails waits a random time between 0 and
    ``min(cap_s, base_s * 2 ** (n - 1))`` ("full jitter", as described in the AWS
    Architecture Blog post "Exponential Backoff And Jitter", 2015).
    """

    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ConfigError(
                "A retry policy needs max_attempts >= 1 and 0 <= base_s <= cap_s; "
                f"got {self.max_attempts}, {self.base_s} and {self.cap_s}."
            )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt``."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True)
class Ordering:
    """Where an event names its object and that object's version.

    Both are dotted paths into the JSON body, e.g. ``data.object.id`` and
    ``data.object.updated``. Versions compare as numbers or ISO-8601 times.
    """

    object_id: str
    version: str

    def key(self, payload: Any) -> tuple[str, Any] | None:
        """The event's (object id, version), or None if the body lacks either."""
        object_id, version = _dig(payload, self.object_id), _dig(payload, self.version)
        if object_id is None or version is None:
            return None
        return str(object_id), version


@dataclass(frozen=True)
class Pipeline:
    """What happens to the events of one source (and types): a workflow's actions.

    ``event_types`` empty handles every type of the source.
    """

    name: str
    source: str
    actions: tuple[Action, ...]
    event_types: tuple[str, ...] = ()
    ordering: Ordering | None = None

    def handles(self, source: str, event_type: str | None) -> bool:
        """Whether this pipeline runs for an event of ``source`` and ``event_type``."""
        wanted = not self.event_types or event_type in self.event_types
        return self.source == source and wanted


class Processor:
    """Claims due events from a ledger and runs their pipelines, with retries.

    ``among``, when given, limits it to those (source, event_id) pairs (at most
    ``hooklab.ledger.MAX_AMONG``): a replay runs the events it chose and no other.
    """

    def __init__(
        self,
        ledger: Ledger,
        pipelines: Sequence[Pipeline],
        *,
        policy: RetryPolicy | None = None,
        lease_s: float = 30.0,
        batch: int = 16,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        poll_s: float = 0.25,
        among: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.ledger = ledger
        self.among = among
        self.pipelines = tuple(pipelines)
        self.policy = policy or RetryPolicy()
        self.lease_s = lease_s
        self.batch = batch
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics or Metrics()
        self.poll_s = poll_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._objects = _KeyedLocks()

    def __repr__(self) -> str:
        return (
            f"Processor(ledger={self.ledger!r}, pipelines={len(self.pipelines)}, "
            f"policy={self.policy!r})"
        )

    def run_once(self) -> int:
        """Claim one batch of due events and process it; return how many."""
        claims = self.ledger.claim(
            self.worker_id,
            now=self.clock(),
            lease_s=self.lease_s,
            limit=self.batch,
            among=self.among,
        )

        for claim in claims:
            self.process(claim)
        return len(claims)

    def run_until_idle(self, max_batches: int = 10_000) -> int:
        """Process due events until none is due; return how many were processed."""
        total = 0

        for _ in range(max_batches):
            done = self.run_once()
            if not done:
                break
            total += done
        return total

    def process(self, claim: Claim) -> None:
        """Run the pipelines of one claimed event and settle it in the ledger."""
        if claim.attempt > self.policy.max_attempts:
            self._bury(claim, "The worker stopped during the last attempt.")
            return

        event = _event(claim)
        pipelines = [
            p for p in self.pipelines if p.handles(event.source, event.event_type)
        ]
        if not pipelines:
            self._settle(claim, "ignored", "No workflow handles this event.")
            return

        # Progress is kept per event, not per action: a retry runs every action of
        # the event again, each with the same idempotency key, so targets that
        # honour the key apply each effect once and others may see a repeat.
        try:
            applied = sum(self._run(pipeline, event) for pipeline in pipelines)
        except Exception as exc:  # an action's failure, whatever it is, is retried
            self._failed(claim, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
            return

        if applied:
            self._settle(claim, "done", "")
        else:
            self._settle(claim, "stale", "Older than the version already applied.")

    def wake(self) -> None:
        """Tell idle worker threads that new events are waiting."""
        self._wake.set()

    def start(self, workers: int = 2) -> None:
        """Run ``workers`` threads that process events until ``stop``."""
        self._stop.clear()

        for n in range(workers):
            thread = threading.Thread(
                target=self._loop, name=f"hooklab-worker-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Let each worker finish its current event, then end the threads."""
        self._stop.set()
        self._wake.set()

        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            failed = False
            try:
                busy = self.run_once()
            except LedgerError as exc:  # busy, locked or full: try again later
                logger.warning("worker.waiting", extra={"reason": str(exc)})
                busy, failed = 0, True
            except Exception:  # a bug must not end the worker either
                logger.exception("worker.failed")
                busy, failed = 0, True

            if not busy:
                # After a failure, events are still due, so the wait for the next
                # one would be none at all: a full disk then logged thousands of
                # lines a second. Wait a polling interval instead.
                self._wake.wait(self.poll_s if failed else self._idle_wait())
                self._wake.clear()

    def _idle_wait(self) -> float:
        due = self.ledger.next_due()
        if due is None:
            return self.poll_s
        return min(self.poll_s, max(due - self.clock(), 0.0))

    def _run(self, pipeline: Pipeline, event: Event) -> bool:
        """Run one pipeline's actions; False if the event is stale for it."""
        key = pipeline.ordering.key(event.payload) if pipeline.ordering else None
        if key is None:
            _call_all(pipeline.actions, event)
            return True

        # One object's events run one at a time in this process, so an older event
        # cannot overtake a newer one between the version check and the actions.
        # Workers in other processes are not covered by this lock.
        with self._objects.hold((pipeline.name, key[0])):
            if not self.ledger.advance_version(pipeline.name, key[0], key[1]):
                return False
            _call_all(pipeline.actions, event)
        return True

    def _failed(self, claim: Claim, error: str) -> None:
        if claim.attempt >= self.policy.max_attempts:
            self._bury(claim, error)
            return

        retry_at = self.clock() + self.policy.delay(claim.attempt, self.rng)
        if self.ledger.fail(claim, now=self.clock(), error=error, retry_at=retry_at):
            self.metrics.inc("retried")
            logger.warning(
                "event.retry",
                extra={"event_id": claim.delivery.event_id, "attempt": claim.attempt},
            )

    def _bury(self, claim: Claim, error: str) -> None:
        if self.ledger.fail(claim, now=self.clock(), error=error, retry_at=None):
            self.metrics.inc("dead")
            logger.error(
                "event.dead",
                extra={"event_id": claim.delivery.event_id, "attempt": claim.attempt},
            )

    def _settle(
        self, claim: Claim, status: Literal["done", "stale", "ignored"], note: str
    ) -> None:
        if self.ledger.finish(claim, now=self.clock(), status=status, note=note):
            self.metrics.inc("processed" if status == "done" else status)
            logger.info(f"event.{status}", extra={"event_id": claim.delivery.event_id})


class _KeyedLocks:
    """One lock per key, created on first use and dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[object, tuple[threading.Lock, int]] = {}

    def hold(self, key: object) -> _Held:
        """A context manager that holds the lock of ``key``."""
        return _Held(self, key)

    def _acquire(self, key: object) -> threading.Lock:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        lock.acquire()
        return lock

    def _release(self, key: object) -> None:
        with self._guard:
            lock, users = self._locks[key]
            lock.release()
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class _Held:
    def __init__(self, locks: _KeyedLocks, key: object) -> None:
        self._locks = locks
        self._key = key

    def __enter__(self) -> None:
        self._locks._acquire(self._key)

    def __exit__(self, *exc_info: object) -> None:
        self._locks._release(self._key)


def _call_all(actions: Sequence[Action], event: Event) -> None:
    for action in actions:
        action(event)


def _event(claim: Claim) -> Event:
    delivery = claim.delivery
    payload, _ = decode_body(delivery.body, delivery.headers.get("content-type", ""))

    return Event(
        source=delivery.source,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        payload=payload,
        body=delivery.body,
        received_at=delivery.received_at,
        attempt=claim.attempt,
        headers=dict(delivery.headers),
    )


def _dig(payload: Any, path: str) -> Any:
    node = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
