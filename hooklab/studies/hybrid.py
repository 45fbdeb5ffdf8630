"""The hybrid, live on loopback: act on webhooks, backfill what they missed.

``run_hybrid`` starts the real receiver (temporary SQLite ledger, two workers)
and a ``MockProvider`` with OAuth and a rate limit. The provider creates orders,
then pushes their ``order.created`` events as signed webhooks through
``hooklab.sender`` with faults injected: a share dropped (never retried, so lost)
and a share delivered twice. Then ``hooklab.backfill.reconcile`` lists the events
through the API, rate limit and all, and records the ones the ledger lacks. The
workers process every event through one counting action; the summary says how
many arrived each way, how many are missing, how many ran more than once, and
whether the client waited as told after every 429.

Threads only, never the caller's event loop, so it runs inside Jupyter.
"""

from __future__ import annotations

import asyncio
import base64
import secrets as _secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from hooklab.actions import Event
from hooklab.api import CallRecord, Client, Cursor, OAuth2
from hooklab.backfill import BackfillReport, reconcile
from hooklab.errors import ConfigError, HooklabError
from hooklab.ledger import SqliteLedger
from hooklab.mockprovider import MockProvider, OAuthConfig, RateLimit, webhook_body
from hooklab.processing import Pipeline, Processor
from hooklab.receiver import Source, create_app
from hooklab.sender import Attempt, Faults
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier

__all__ = [
    "HybridResult",
    "HybridSummary",
    "HybridTimeout",
    "run_hybrid",
    "waited_as_told",
]

T = TypeVar("T")

SOURCE = "provider"
SCHEME = "standard-webhooks"
CLIENT_ID = "hooklab-lab"
#: How much earlier than told a retry may start and still count as waiting as told
#: (timer resolution on the client; the server's answer is whole seconds anyway).
TOLERANCE_S = 0.005


class HybridTimeout(HooklabError):
    """The workers did not finish processing within the time allowed."""


@dataclass(frozen=True)
class HybridSummary:
    """The scenario's outcome, in the order the command prints it."""

    events_emitted: int
    delivered_by_webhook: int
    webhooks_lost: int
    webhook_duplicates: int
    recovered_by_backfill: int
    missing: int
    processed_more_than_once: int
    calls_made: int
    calls_refused_429: int
    waited_as_told: bool
    wall_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary as aligned ``label  value`` lines."""
        rows = [
            ("events emitted", self.events_emitted),
            ("delivered by webhook", self.delivered_by_webhook),
            ("webhooks lost", self.webhooks_lost),
            ("duplicate webhooks", self.webhook_duplicates),
            ("recovered by backfill", self.recovered_by_backfill),
            ("missing", self.missing),
            ("processed more than once", self.processed_more_than_once),
            ("API calls made", self.calls_made),
            ("API calls refused with 429", self.calls_refused_429),
            ("waited as told after each 429", "yes" if self.waited_as_told else "NO"),
            ("wall time", f"{self.wall_seconds:.1f} s"),
        ]
        return [f"{label:<30}{value}" for label, value in rows]

    def headline(self) -> str:
        """One sentence for the report's key findings."""
        return (
            f"Hybrid, live on loopback: {self.webhooks_lost} of "
            f"{self.events_emitted} webhooks lost and {self.webhook_duplicates} "
            f"duplicated; the backfill recovered {self.recovered_by_backfill} with "
            f"{self.calls_made} API calls; {self.missing} missing, "
            f"{self.processed_more_than_once} processed twice."
        )


@dataclass(frozen=True)
class HybridResult:
    """The summary, the client's call log (one row per attempt) and the backfill."""

    summary: HybridSummary
    calls: pd.DataFrame
    backfill: BackfillReport


def run_hybrid(
    *,
    events: int = 2000,
    drop: float = 0.10,
    duplicate: float = 0.05,
    rate_limit: float = 10.0,
    page_size: int = 100,
    seed: int = 7,
    timeout_s: float = 60.0,
) -> HybridResult:
    """Run the hybrid scenario on loopback and summarise it.

    ``drop`` and ``duplicate`` are shares of webhooks; ``rate_limit`` is the API's
    requests a second (answered 429 beyond, with Retry-After); ``timeout_s``
    bounds the wait for the workers to finish. Raises HybridTimeout past it.
    """
    _check(events, drop, duplicate, rate_limit, page_size)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="hooklab-hybrid-") as folder:
        run = _Run(Path(folder) / "ledger.db", events, rate_limit, page_size)
        faults = Faults(drop, duplicate, seed=seed)
        report, attempts, calls = run.execute(faults, timeout_s)
        summary = run.summarise(attempts, calls, report, time.perf_counter() - started)

    frame = pd.DataFrame([asdict(call) for call in calls])
    return HybridResult(summary=summary, calls=frame, backfill=report)


def waited_as_told(calls: Sequence[CallRecord]) -> bool:
    """Whether each 429 was followed by a wait of at least its Retry-After.

    Measured, not trusted: the next attempt must start no earlier than the 429's
    answer plus what Retry-After said (``calls`` in the order they were made, by
    one walker).
    """
    for refused, following in zip(calls, calls[1:], strict=False):
        if refused.status != 429:
            continue
        if refused.retry_after_s is None:
            return False
        answered = refused.started_at + refused.latency_s
        if following.started_at + TOLERANCE_S < answered + refused.retry_after_s:
            return False
    return True


class _Run:
    """One scenario: the ledger, the provider and the workers it shares."""

    def __init__(
        self, ledger_path: Path, events: int, rate_limit: float, page_size: int
    ) -> None:
        self.events = events
        self.page_size = page_size
        self.secret = "whsec_" + base64.b64encode(_secrets.token_bytes(24)).decode()
        self.client_secret = _secrets.token_urlsafe(24)
        self.ledger = SqliteLedger(ledger_path)
        self.effects: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.provider = MockProvider(
            webhook_secret=self.secret,
            rate_limit=RateLimit(rate_limit),
            oauth=OAuthConfig(CLIENT_ID, self.client_secret),
        )

    def execute(
        self, faults: Faults, timeout_s: float
    ) -> tuple[BackfillReport, list[Attempt], list[CallRecord]]:
        """Emit, backfill and process; return what each side recorded."""
        pipeline = Pipeline("hybrid", SOURCE, (self._effect,))
        processor = Processor(self.ledger, [pipeline], poll_s=0.05)
        receiver = create_app(
            {SOURCE: Source(SOURCE, Verifier(SCHEME, self.secret))},
            self.ledger,
            on_commit=processor.wake,
        )

        processor.start(workers=2)
        try:
            with (
                serve_in_thread(receiver) as hooks,
                serve_in_thread(self.provider.app) as api,
            ):
                self.provider.webhook_url = f"{hooks.url}/hooks/{SOURCE}"
                since = self._create_orders()
                attempts = _in_thread(
                    lambda: asyncio.run(self.provider.emit(faults=faults))
                )
                report, calls = self._backfill(api.url, since, processor)
                self._wait_processed(timeout_s)
        finally:
            processor.stop()
            self.ledger.close()
        return report, attempts, calls

    def summarise(
        self,
        attempts: list[Attempt],
        calls: list[CallRecord],
        report: BackfillReport,
        wall_s: float,
    ) -> HybridSummary:
        """Count what happened, from the provider's, workers' and client's logs."""
        delivered = {a.msg_id for a in attempts if a.ok}
        emitted = [event["id"] for event in self.provider.events]
        processed = {key.partition(":")[2] for key in self.effects}

        return HybridSummary(
            events_emitted=len(emitted),
            delivered_by_webhook=len(delivered),
            webhooks_lost=len(set(emitted) - delivered),
            webhook_duplicates=sum(a.ok and a.trigger == "duplicate" for a in attempts),
            recovered_by_backfill=report.recovered,
            missing=len(set(emitted) - processed),
            processed_more_than_once=sum(n > 1 for n in self.effects.values()),
            calls_made=len(calls),
            calls_refused_429=sum(call.status == 429 for call in calls),
            waited_as_told=waited_as_told(calls),
            wall_seconds=wall_s,
        )

    def _effect(self, event: Event) -> None:
        """The workflow's one action: count each event's effect by its key."""
        with self._lock:
            self.effects[event.idempotency_key] += 1

    def _create_orders(self) -> float:
        """Create the orders (each with its event); return a time just before."""
        since = time.time() - 1.0
        for number in range(self.events):
            self.provider.create_order({"number": number, "total": 10 + number % 90})
        return since

    def _backfill(
        self, base_url: str, since: float, processor: Processor
    ) -> tuple[BackfillReport, list[CallRecord]]:
        auth = OAuth2(f"{base_url}/oauth/token", CLIENT_ID, self.client_secret)
        with Client(base_url, auth=auth) as client:
            report = reconcile(
                client,
                self.ledger,
                since,
                source=SOURCE,
                style=Cursor(limit=self.page_size),
                to_body=webhook_body,
                on_recorded=processor.wake,
            )
        return report, [c for c in client.calls if c.route != "/oauth/token"]

    def _wait_processed(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.ledger.stats()
            if not (stats["pending"] or stats["processing"] or stats["failed"]):
                return
            time.sleep(0.02)
        raise HybridTimeout(
            f"The workers did not finish within {timeout_s:g} s: {self.ledger.stats()}."
        )


def _in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a fresh thread: ``asyncio.run`` needs a thread with no loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def _check(
    events: int, drop: float, duplicate: float, rate_limit: float, page_size: int
) -> None:
    if events < 1 or rate_limit <= 0 or not 1 <= page_size <= 100:
        raise ConfigError(
            "The hybrid lab needs events >= 1, rate_limit > 0 and page_size from 1 "
            f"to 100; got {events}, {rate_limit} and {page_size}."
        )
    if not (0 <= drop <= 1 and 0 <= duplicate <= 1):
        raise ConfigError(
            "--drop and --duplicate are shares from 0 to 1; got "
            f"{drop} and {duplicate}."
        )
