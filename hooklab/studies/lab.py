"""The push-versus-poll lab: a live experiment on loopback, in compressed time.

``run_lab`` starts the real receiver (with a temporary SQLite ledger) and a
``MockProvider`` on loopback, points the provider's Standard Webhooks at the receiver,
creates events with exponential gaps over a simulated window, and meanwhile runs one
poller per polling interval against the provider's paginated API. Every event is
detected by push (the receiver's ledger) and by each poller, and each detection's
latency is measured.

Time is compressed by ``scale`` (simulated seconds per real second): a 10-minute
polling interval at ``scale=600`` is one real second. Waiting is scaled back up;
network time is not. Push latency is real time throughout, and poll latency is
``(poll start - created) * scale + (poll end - poll start)``.

The lab uses threads only, never the caller's event loop, so it runs inside Jupyter.
"""

from __future__ import annotations

import base64
import itertools
import logging
import math
import random
import secrets as _secrets
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hooklab.api import Client
from hooklab.errors import ConfigError
from hooklab.ledger import Delivery, SqliteLedger
from hooklab.mockprovider import MockProvider
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier
from hooklab.simulate import SUMMARY_COLUMNS, poll_label
from hooklab.spec import Engagement, secret_value
from hooklab.studies._words import counted
from hooklab.studies.payloads import make_payload
from hooklab.studies.pushpull import busiest_webhook_source

__all__ = [
    "LabPlan",
    "LabResult",
    "describe_run",
    "lab_headline",
    "lab_plan",
    "method_label",
    "plot_calls",
    "plot_latency",
    "run_lab",
]

logger = logging.getLogger(__name__)

SCHEME = "standard-webhooks"
PUSH = "push"
POLLS_PER_WINDOW = 4
#: The columns of ``LabResult.records`` (``detected_at`` is added from them).
RECORD_COLUMNS = [
    "event_id",
    "event_type",
    "method",
    "created_at",
    "latency_s",
    "calls",
]

#: Events a real second when the lab measures push alone.
PUSH_ONLY_RATE = 100.0
START_LEAD_S = 0.05


@dataclass(frozen=True)
class LabResult:
    """What a lab run measured.

    ``records`` has one row per first detection: event_id, event_type, method (how
    it was detected), created_at, detected_at and latency_s in real-world time, and
    calls, the API calls detecting it cost: none for push (webhooks count against
    no API limit, as in ``hooklab.simulate``); for a poller, the calls made since
    its last finding poll, shared among the events it found.
    ``summary`` is indexed by method.
    """

    records: pd.DataFrame
    summary: pd.DataFrame
    scale: float
    wall_seconds: float
    events: int
    webhook_attempts: int
    poll_intervals_s: tuple[float, ...] = ()
    #: Unix time at which the simulated window began: pollers ran at
    #: ``clock_start + k * interval / scale``.
    clock_start: float = 0.0


@dataclass(frozen=True)
class _Planned:
    offset_s: float
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Schedule:
    """When one poller runs: real start time, period and deadline, and its goal."""

    start: float
    period: float
    deadline: float
    expected: int


@dataclass
class _PollLog:
    """What one poller saw: first detections, repeats, polls and API calls."""

    label: str
    clock_start: float = 0.0
    detections: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: API calls charged to each event: those made since the last poll that found
    #: something, shared among the events this poll found.
    calls_spent: dict[str, float] = field(default_factory=dict)
    uncharged_calls: int = 0
    duplicates: set[str] = field(default_factory=set)
    polls: int = 0
    empty_polls: int = 0
    calls: int = 0


@dataclass(frozen=True)
class LabPlan:
    """What the lab runs for an engagement: its event mix, intervals and time scale."""

    event_mix: dict[str, float]
    poll_intervals_s: list[float]
    today_intervals_s: list[float]
    scale: float
    secret_name: str | None
    secret_env: str | None
    #: Today's intervals too long to run live (over ``LIVE_LIMIT_S``); the scale
    #: chapter (04_scale) simulates them instead.
    simulated_only_s: list[float] = field(default_factory=list)

    @property
    def events_per_day(self) -> float:
        """The engagement's volume across the lab's event types."""
        return sum(self.event_mix.values())

    def secret(self, engagement: Engagement) -> str | None:
        """The signing secret's value from its variable, or None to generate one.

        The lab signs with Standard Webhooks whatever the app's own scheme, so only
        a Standard Webhooks secret (whsec_ and base64) is taken from the variable;
        any other, such as a Shopify app's client secret, is left alone and the lab
        makes its own. Whether a secret suits its app's scheme is the security
        chapter's check, not the lab's.
        """
        if not self.secret_name:
            return None
        value = secret_value(engagement, self.secret_name)
        if value is None:
            return None
        try:
            Verifier(SCHEME, value)
        except ConfigError:
            return None
        return value

    def describe(self) -> str:
        """The plan in a few lines, free of anything that changes between runs."""
        mix = ", ".join(f"{kind} {count:g}" for kind, count in self.event_mix.items())
        intervals = ", ".join(
            method_label(i).removeprefix("poll ")
            + (" (today)" if i in self.today_intervals_s else "")
            for i in self.poll_intervals_s
        )
        secret = f"${self.secret_env}" if self.secret_env else "none named"
        skipped = ""
        if self.simulated_only_s:
            slow = ", ".join(
                method_label(i).removeprefix("poll ") for i in self.simulated_only_s
            )
            skipped = (
                f"Not run live: {slow} (today), longer than "
                f"{method_label(LIVE_LIMIT_S).removeprefix('poll ')}; the scale "
                "chapter (04_scale) simulates it.\n"
            )
        return (
            f"Event mix (events a day): {mix}.\n"
            f"Poll intervals: {intervals}.\n"
            f"{skipped}"
            f"Time scale: {self.scale:g} simulated seconds per real second "
            f"({method_label(self.scale).removeprefix('poll ')} take 1 s).\n"
            f"Signing secret: read from {secret} when it holds a Standard Webhooks "
            "secret (the scheme the lab signs with), otherwise generated afresh for "
            "this run; never shown."
        )


#: Intervals a consultant compares against whatever the client polls at today.
USUAL_INTERVALS_S = (60.0, 300.0, 900.0)
#: The longest interval the lab runs live: its window is four of the longest
#: interval, so at scale 600 one hour takes 24 s of real time and a daily poll
#: would take ten minutes. Longer intervals are left to the scale chapter.
LIVE_LIMIT_S = 3600.0


def lab_plan(engagement: Engagement, *, scale: float = 600.0) -> LabPlan:
    """The lab for an engagement: its webhook-capable triggers at their volumes.

    The signing secret is the one named by the busiest webhook source. Today's
    intervals longer than ``LIVE_LIMIT_S`` are not run live but listed in
    ``simulated_only_s``.
    """
    pushed = [wf for wf in engagement.workflows if engagement.app(wf.source).webhooks]
    if not pushed:
        raise ConfigError(
            "The lab needs at least one workflow whose source app sends webhooks "
            "(apps[].webhooks: true); this engagement has none."
        )
    mix: dict[str, float] = {}
    for wf in pushed:
        mix[wf.trigger] = mix.get(wf.trigger, 0.0) + wf.events_per_day

    today = sorted(
        {
            wf.current.poll_interval_min * 60
            for wf in engagement.workflows
            if wf.current.method == "poll" and wf.current.poll_interval_min
        }
    )
    busiest = busiest_webhook_source(engagement)
    env = engagement.secrets[busiest.secret].env if busiest.secret else None

    live_today = [interval for interval in today if interval <= LIVE_LIMIT_S]
    return LabPlan(
        event_mix=mix,
        poll_intervals_s=sorted({*USUAL_INTERVALS_S, *live_today}),
        today_intervals_s=today,
        scale=scale,
        secret_name=busiest.secret,
        secret_env=env,
        simulated_only_s=[interval for interval in today if interval > LIVE_LIMIT_S],
    )


def describe_run(result: LabResult) -> str:
    """What ran and how long it took, with the lab's own event rate."""
    if not result.poll_intervals_s:
        return (
            f"{result.events} signed webhooks ran for {result.wall_seconds:.1f} s of "
            "real time (push alone: no time scaling)."
        )
    window_s = POLLS_PER_WINDOW * max(result.poll_intervals_s)
    per_day = result.events / window_s * 86400
    pollers = len(result.poll_intervals_s)
    return (
        f"{result.events} signed webhooks and {_count(pollers, 'poller')} ran "
        f"for {result.wall_seconds:.1f} s of real time, standing for "
        f"{window_s / 60:.0f} simulated minutes at {result.scale:g}x "
        f"(an arrival rate of {per_day:,.0f} events a day)."
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def lab_headline(result: LabResult, plan: LabPlan) -> list[str]:
    """The lab's measured figures as sentences, polling projected to real volume.

    An interval used today that the lab did not run (too long to run live) is
    stood for by the longest interval that ran, and the sentence says so.
    """
    push = result.summary.loc[PUSH]
    lines = [
        f"Push, measured on {result.events} signed webhooks: median "
        f"{push.p50_s * 1000:.1f} ms and p99 {push.p99_s * 1000:.1f} ms from event to "
        f"durable acknowledgement; {push.missed:.0f} missed."
    ]
    ran = [
        i for i in result.poll_intervals_s if method_label(i) in result.summary.index
    ]
    for interval in plan.today_intervals_s or plan.poll_intervals_s[-1:]:
        if method_label(interval) in result.summary.index:
            lines.append(_polling_line(result, plan, interval))
        elif ran:
            lines.append(_stand_in_line(result, plan, interval, max(ran)))
    return lines


def _polling_line(result: LabResult, plan: LabPlan, interval: float) -> str:
    poll = result.summary.loc[method_label(interval)]
    calls_a_day = 86400 / interval
    return (
        f"Polling every {method_label(interval).removeprefix('poll ')} (today), "
        f"measured: median {poll.p50_s / 60:.1f} min, worst {poll.max_s / 60:.1f} "
        f"min. At {plan.events_per_day:g} events a day (the lab's mix: every trigger "
        f"that arrives by webhook) it costs at least "
        f"{counted(round(calls_a_day), 'API call')} a day, "
        f"{calls_a_day / plan.events_per_day:.1f} per event."
    )


def _stand_in_line(
    result: LabResult, plan: LabPlan, today: float, longest: float
) -> str:
    poll = result.summary.loc[method_label(longest)]
    calls_a_day = 86400 / today
    return (
        f"Polling every {method_label(today).removeprefix('poll ')} (today) is too "
        "long to run live; the scale chapter simulates it. The longest interval "
        f"run, every {method_label(longest).removeprefix('poll ')}, measured: median "
        f"{poll.p50_s / 60:.1f} min, worst {poll.max_s / 60:.1f} min, and today's "
        "waits are longer still. "
        f"At {plan.events_per_day:g} events a day (the lab's mix: every trigger "
        "that arrives by webhook) today's polling costs at least "
        f"{counted(calls_a_day, 'API call')} a day, "
        f"{calls_a_day / plan.events_per_day:.2g} per event."
    )


def method_label(interval_s: float) -> str:
    """Name a polling interval the way the results show it, e.g. "poll 10 min"."""
    return poll_label(interval_s)


def run_lab(
    *,
    events: int,
    event_mix: Mapping[str, float],
    poll_intervals_s: Sequence[float],
    scale: float,
    seed: int,
    secret: str | None = None,
    page_size: int = 100,
) -> LabResult:
    """Run the live push-versus-poll experiment and return its measurements."""
    _validate(events, event_mix, poll_intervals_s, scale, page_size)
    if poll_intervals_s:
        window_real = POLLS_PER_WINDOW * max(poll_intervals_s) / scale
    else:  # push alone: no poll interval sets the pace
        window_real = events / PUSH_ONLY_RATE
    plan = _plan(events, event_mix, window_real, random.Random(seed))
    secret = secret or _fresh_secret()

    started = time.perf_counter()
    logger.info("lab.started", extra={"events": events, "scale": scale})
    created, deliveries, polls, attempts, clock_start = _experiment(
        plan, poll_intervals_s, scale, secret, page_size
    )
    wall = time.perf_counter() - started
    logger.info("lab.finished", extra={"wall_seconds": wall})

    records = _records(created, deliveries, polls, scale)
    summary = _summary(records, events, deliveries, polls)
    return LabResult(
        records,
        summary,
        scale,
        wall,
        events,
        attempts,
        tuple(poll_intervals_s),
        clock_start=clock_start,
    )


def _validate(
    events: int,
    event_mix: Mapping[str, float],
    intervals: Sequence[float],
    scale: float,
    page_size: int,
) -> None:
    problems = []
    if events < 1:
        problems.append(f"events must be at least 1, got {events}")
    if not event_mix or min(event_mix.values()) < 0 or sum(event_mix.values()) <= 0:
        problems.append("event_mix needs non-negative weights with a positive sum")
    if intervals and min(intervals) <= 0:
        problems.append("poll_intervals_s must all be positive")
    if len({method_label(i) for i in intervals}) != len(intervals):
        problems.append("poll_intervals_s must not repeat an interval")
    if scale <= 0:
        problems.append(f"scale must be positive, got {scale}")
    if not 1 <= page_size <= 100:
        problems.append(f"page_size must be from 1 to 100, got {page_size}")

    if problems:
        raise ConfigError("The lab cannot run: " + "; ".join(problems) + ".")


def _plan(
    events: int, mix: Mapping[str, float], window_real: float, rng: random.Random
) -> list[_Planned]:
    """Exponential gaps (a Poisson process) conditioned to fit inside the window."""
    gaps = [rng.expovariate(1.0) for _ in range(events + 1)]
    stretch = window_real / sum(gaps)
    offsets = [total * stretch for total in itertools.accumulate(gaps[:events])]
    types = rng.choices(list(mix), weights=list(mix.values()), k=events)

    return [
        _Planned(offset, kind, make_payload(kind, rng, event_id=f"lab_{n:05d}"))
        for n, (offset, kind) in enumerate(zip(offsets, types, strict=True), start=1)
    ]


def _fresh_secret() -> str:
    return "whsec_" + base64.b64encode(_secrets.token_bytes(24)).decode()


def _experiment(
    plan: list[_Planned],
    intervals: Sequence[float],
    scale: float,
    secret: str,
    page_size: int,
) -> tuple[list[dict[str, Any]], list[Delivery], list[_PollLog], int, float]:
    """Serve receiver and provider, run the timeline, collect what each side saw."""
    provider = MockProvider(webhook_secret=secret)

    with (
        tempfile.TemporaryDirectory(prefix="hooklab-lab-") as folder,
        SqliteLedger(Path(folder) / "ledger.db") as ledger,
    ):
        sources = {"lab": Source("lab", Verifier(SCHEME, secret))}
        with (
            # The receiver as `hooklab serve` runs it: commits in a writer process.
            serve_in_thread(create_app(sources, ledger, writer="process")) as hooks,
            serve_in_thread(provider.app) as api,
        ):
            provider.webhook_url = f"{hooks.url}/hooks/lab"
            polls, clock_start = _timeline(api.url, plan, intervals, scale, page_size)
            _wait_for_push(ledger, provider, len(plan))
        deliveries = ledger.deliveries()

    return provider.events, deliveries, polls, len(provider.attempts), clock_start


def _timeline(
    base_url: str,
    plan: list[_Planned],
    intervals: Sequence[float],
    scale: float,
    page_size: int,
) -> tuple[list[_PollLog], float]:
    """Create events on schedule while one thread per interval polls the API.

    Returns what each poller saw and the Unix time the schedule started.

    Clients are built before the clock starts: building one takes tens of
    milliseconds, which at a large ``scale`` would be minutes of simulated time.
    """
    logs = [_PollLog(method_label(interval)) for interval in intervals]
    abort = threading.Event()

    with (
        httpx.Client(base_url=base_url, timeout=10) as http,
        ExitStack() as stack,
        ThreadPoolExecutor(max_workers=len(intervals) + 1) as pool,
    ):
        clients = [stack.enter_context(Client(base_url)) for _ in intervals]
        start = time.time() + START_LEAD_S
        for log in logs:
            log.clock_start = start
        longest = max(intervals, default=0.0)
        deadline = start + plan[-1].offset_s + 2 * longest / scale + 10

        futures = [pool.submit(_create_events, http, plan, start, abort)]
        for log, client, interval in zip(logs, clients, intervals, strict=True):
            schedule = _Schedule(start, interval / scale, deadline, len(plan))
            futures.append(pool.submit(_poll, client, log, schedule, page_size, abort))
        for future in futures:
            future.result()

    return logs, start


def _create_events(
    http: httpx.Client, plan: list[_Planned], start: float, abort: threading.Event
) -> None:
    try:
        for planned in plan:
            _sleep_until(start + planned.offset_s)
            body = {"type": planned.event_type, "data": planned.payload}
            http.post("/_control/events", json=body).raise_for_status()
    except BaseException:
        abort.set()
        raise


def _poll(
    client: Client,
    log: _PollLog,
    schedule: _Schedule,
    page_size: int,
    abort: threading.Event,
) -> None:
    """Poll on the schedule's slots until every expected event has been seen.

    A poll that overruns its slot skips the slots it missed, as a scheduler would.
    """
    cursor: str | None = None
    slot = schedule.start

    while len(log.detections) < schedule.expected and slot <= schedule.deadline:
        if abort.is_set():
            break
        _sleep_until(slot)
        cursor = _poll_once(client, log, cursor, page_size)
        slot = _next_slot(schedule.start, schedule.period, slot)

    log.calls = len(client.calls)


def _poll_once(
    client: Client, log: _PollLog, cursor: str | None, page_size: int
) -> str | None:
    """Walk every page after ``cursor``, note first sightings, return the cursor."""
    poll_start = time.time()
    calls_before = len(client.calls)
    pages = client.iter_pages("/v1/events", limit=page_size, cursor=cursor)
    seen = [event for page in pages for event in page]
    poll_end = time.time()

    log.polls += 1
    log.empty_polls += not seen
    log.uncharged_calls += len(client.calls) - calls_before
    new = [event["id"] for event in seen if event["id"] not in log.detections]
    log.duplicates.update(event["id"] for event in seen if event["id"] not in new)
    for event_id in new:
        log.detections[event_id] = (poll_start, poll_end)
        log.calls_spent[event_id] = log.uncharged_calls / len(new)
    if new:
        log.uncharged_calls = 0
    return str(seen[-1]["id"]) if seen else cursor


def _next_slot(start: float, period: float, previous: float) -> float:
    """The first slot after both ``previous`` and now."""
    latest = max(previous, time.time())
    return start + (math.floor((latest - start) / period) + 1) * period


def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def _wait_for_push(
    ledger: SqliteLedger, provider: MockProvider, expected: int, timeout: float = 10
) -> None:
    """Give in-flight webhooks a moment to land before the servers stop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger.count() >= expected and len(provider.attempts) >= expected:
            return
        time.sleep(0.01)
    logger.warning("lab.push_incomplete", extra={"stored": ledger.count()})


def _records(
    created: list[dict[str, Any]],
    deliveries: list[Delivery],
    polls: list[_PollLog],
    scale: float,
) -> pd.DataFrame:
    """One row per (event, method) first detection, latency in real-world seconds."""
    events = {event["id"]: event for event in created}
    rows = [
        _row(
            events[d.event_id],
            PUSH,
            d.received_at - events[d.event_id]["created"],
            calls=0,  # a webhook costs the client no API call
        )
        for d in deliveries
        if d.event_id in events
    ]
    for log in polls:
        for event_id, (poll_start, poll_end) in log.detections.items():
            born = events[event_id]["created"]
            latency = _poll_latency(born, poll_start, poll_end, scale)
            spent = log.calls_spent[event_id]
            rows.append(_row(events[event_id], log.label, latency, calls=spent))

    frame = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
    # Detection in real-world time: the latency already scales the waiting.
    frame["detected_at"] = frame["created_at"] + pd.to_timedelta(
        frame["latency_s"], unit="s"
    )
    return frame


def _poll_latency(
    created: float, poll_start: float, poll_end: float, scale: float
) -> float:
    """Scaled waiting until the poll began, plus the poll's real HTTP time.

    An event created while a poll was already running waited for no interval.
    """
    waited = max(poll_start - created, 0.0) * scale
    return waited + poll_end - max(poll_start, created)


def _row(
    event: dict[str, Any], method: str, latency_s: float, *, calls: float
) -> dict[str, Any]:
    return {
        "event_id": event["id"],
        "event_type": event["type"],
        "method": method,
        "created_at": event["created"],
        "latency_s": max(latency_s, 0.0),
        "calls": calls,
    }


def _summary(
    records: pd.DataFrame,
    events: int,
    deliveries: list[Delivery],
    polls: list[_PollLog],
) -> pd.DataFrame:
    """Latency percentiles, API-call cost and completeness per method."""
    push_dupes = sum(1 for d in deliveries if d.repeats)
    rows = {PUSH: _method_stats(records, PUSH, events, 0, math.nan, push_dupes)}
    for log in polls:
        empty_share = log.empty_polls / log.polls if log.polls else math.nan
        rows[log.label] = _method_stats(
            records, log.label, events, log.calls, empty_share, len(log.duplicates)
        )

    summary = pd.DataFrame.from_dict(rows, orient="index", columns=SUMMARY_COLUMNS)
    summary.index.name = "method"
    return summary


def _method_stats(
    records: pd.DataFrame,
    method: str,
    events: int,
    calls: int,
    empty_share: float,
    duplicated: int,
) -> dict[str, float]:
    latencies = records.loc[records["method"] == method, "latency_s"].to_numpy()
    p50, p95, p99 = (
        np.quantile(latencies, [0.5, 0.95, 0.99]) if len(latencies) else [math.nan] * 3
    )

    return {
        "p50_s": float(p50),
        "p95_s": float(p95),
        "p99_s": float(p99),
        "max_s": float(latencies.max()) if len(latencies) else math.nan,
        "calls": calls,
        "calls_per_event": calls / events,
        "empty_poll_share": empty_share,
        "missed": events - len(latencies),
        "duplicated": duplicated,
    }


def plot_latency(result: LabResult) -> Figure:
    """Box plot of detection latency per method, log scale, in real-world seconds."""
    methods = list(result.summary.index)
    series = [
        result.records.loc[result.records["method"] == m, "latency_s"].clip(lower=1e-3)
        for m in methods
    ]

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.boxplot([s.to_numpy() for s in series], whis=(5, 95))
    axes.set_xticks(range(1, len(methods) + 1), methods)
    axes.set_yscale("log")
    axes.set_title(f"Detection latency by method ({result.events} events, seconds)")
    axes.set_xlabel("method")
    axes.set_ylabel("latency (s, real-world)")
    return figure


def plot_calls(result: LabResult, events_per_day: float | None = None) -> Figure:
    """API calls per event for each method, measured, and projected to a real volume.

    Push spends no API calls: webhooks arrive at the client and count against no
    rate limit. Polling spends its calls whether or not anything changed, so the
    lab's compressed arrival rate flatters it; with ``events_per_day`` a second
    series shows one call per poll at that volume, the least polling can cost.
    """
    api_calls = result.summary["calls_per_event"].copy()
    api_calls[PUSH] = 0.0
    if not result.poll_intervals_s:
        raise ConfigError("plot_calls compares pollers; this lab ran push alone.")
    window_s = POLLS_PER_WINDOW * max(result.poll_intervals_s)
    lab_rate = result.events / window_s * 86400

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(api_calls))
    width = 0.4 if events_per_day else 0.8
    bars = axes.bar(
        positions,
        api_calls.to_numpy(),
        width,
        label=f"lab, measured ({lab_rate:,.0f} events/day)",
    )
    axes.bar_label(bars, fmt="%.2f")
    tallest = float(api_calls.max())
    if events_per_day:
        projected = [0.0] + [
            86400 / i / events_per_day for i in result.poll_intervals_s
        ]
        tallest = max(tallest, *projected)
        bars = axes.bar(
            positions + width,
            projected,
            width,
            label=f"at {events_per_day:g} events/day, projected",
        )
        axes.bar_label(bars, fmt="%.2f")
    axes.set_xticks(positions + (width / 2 if events_per_day else 0), api_calls.index)
    axes.set_yscale("symlog", linthresh=0.01)
    axes.set_ylim(0, tallest * 4)  # room for the labels above the tallest bar
    axes.set_title("API calls per event by method (calls/event; push spends none)")
    axes.set_xlabel("method")
    axes.set_ylabel("API calls per event (calls/event)")
    axes.legend()
    return figure
