"""Polling against push at scale: a vectorised simulation that agrees with the lab.

The lab (``hooklab.studies.lab``) measures a few hundred events on real loopback
traffic; this module extrapolates to a year of a client's volume in a second or two.
Each method turns an array of event times into an array of detection latencies:

- **poll** every ``interval_s``: an event is seen by the first poll at or after it,
  later if its poll needs several pages and the API's rate limit spaces them out;
- **push**: each delivery attempt fails with ``failure_rate``; failed ones are
  retried on the provider's schedule until it gives up (then the event is missed);
- **hybrid**: push, plus a backfill poll every ``backfill_s`` that finds what push
  missed.

Everything is numpy on whole arrays; no Python loop runs per event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from hooklab.errors import ConfigError

__all__ = [
    "BUSINESS_HOURS",
    "SUMMARY_COLUMNS",
    "ArrivalProfile",
    "MethodOutcome",
    "PollPolicy",
    "PushPolicy",
    "arrivals_from_times",
    "poisson_arrivals",
    "poll_label",
    "simulate",
    "simulate_hybrid",
    "simulate_poll",
    "simulate_push",
    "summarise",
]

Floats = npt.NDArray[np.float64]

DAY_S = 86400.0
_HOUR_S = 3600.0

#: The columns every summary has, the lab's and the simulation's alike.
SUMMARY_COLUMNS = [
    "p50_s",
    "p95_s",
    "p99_s",
    "max_s",
    "calls",
    "calls_per_event",
    "empty_poll_share",
    "missed",
    "duplicated",
]


@dataclass(frozen=True)
class ArrivalProfile:
    """Relative event rates by hour of day (24 values) and weekday (7, Monday first).

    Both are normalised to a mean of 1, so ``events_per_day`` keeps its meaning.
    """

    hourly: tuple[float, ...] = (1.0,) * 24
    weekly: tuple[float, ...] = (1.0,) * 7

    def __post_init__(self) -> None:
        if len(self.hourly) != 24 or len(self.weekly) != 7:
            raise ConfigError(
                "An arrival profile needs 24 hourly and 7 daily weights, got "
                f"{len(self.hourly)} and {len(self.weekly)}."
            )
        if min(self.hourly) < 0 or min(self.weekly) < 0 or not sum(self.hourly):
            raise ConfigError("Arrival profile weights must be non-negative.")

    def rate_per_hour(self, hours: int, events_per_day: float) -> Floats:
        """Expected events in each of ``hours`` consecutive hours from Monday 00:00."""
        hourly = np.asarray(self.hourly) / np.mean(self.hourly)
        weekly = np.asarray(self.weekly) / np.mean(self.weekly)
        index = np.arange(hours)
        weights = hourly[index % 24] * weekly[(index // 24) % 7]
        return np.asarray(weights * events_per_day / 24, dtype=np.float64)


#: A small business's shop: quiet at night, busy in the evening, calmer at weekends.
BUSINESS_HOURS = ArrivalProfile(
    hourly=(0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.3, 1.4, 1.4,
            1.5, 1.4, 1.3, 1.3, 1.4, 1.5, 1.7, 1.9, 1.8, 1.4, 0.9, 0.5),
    weekly=(1.1, 1.0, 1.0, 1.0, 1.1, 0.9, 0.8),
)  # fmt: skip


def poisson_arrivals(
    events_per_day: float,
    days: float,
    rng: np.random.Generator,
    profile: ArrivalProfile | None = None,
) -> Floats:
    """Event times in seconds, sorted: a Poisson process shaped by ``profile``.

    Each hour gets a Poisson count at that hour's rate, spread uniformly inside it.
    """
    if events_per_day < 0 or days <= 0:
        raise ConfigError(
            f"Arrivals need events_per_day >= 0 and days > 0, got {events_per_day} "
            f"and {days}."
        )
    hours = math.ceil(days * 24)
    rates = (profile or ArrivalProfile()).rate_per_hour(hours, events_per_day)
    counts = rng.poisson(rates)
    starts = np.repeat(np.arange(hours) * _HOUR_S, counts)
    times = np.sort(starts + rng.uniform(0.0, _HOUR_S, size=starts.size))
    return times[times < days * DAY_S]


def arrivals_from_times(times: Sequence[float | str | datetime]) -> Floats:
    """A real series of event times (a delivery log's) as sorted seconds from the first.

    Accepts Unix seconds (Stripe's ``created``), ISO 8601 strings (GitHub's
    ``delivered_at``, with ``Z`` or an offset) or datetimes; a naive time is
    refused, since its zone cannot be known.
    """
    seconds = np.sort(np.array([_unix(value) for value in times], dtype=np.float64))
    return seconds - seconds[0] if seconds.size else seconds


def _unix(value: float | str | datetime) -> float:
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"Event time {text[:40]!r} is neither Unix seconds nor ISO 8601."
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(
                f"Event time {value.isoformat()} has no time zone; give one (Z or "
                "+hh:mm) so arrivals line up."
            )
        return value.timestamp()
    return float(value)


@dataclass(frozen=True)
class PollPolicy:
    """Polling every ``interval_s``, ``page_size`` events a call, rate limited.

    The first poll runs at ``phase_s``. Pages after the first wait for the rate limit
    (``rate_limit_per_s``), and every call takes ``call_latency_s``.
    """

    interval_s: float
    page_size: int = 100
    rate_limit_per_s: float | None = None
    call_latency_s: float = 0.0
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.page_size < 1:
            raise ConfigError(
                f"Polling needs interval_s > 0 and page_size >= 1, got "
                f"{self.interval_s} and {self.page_size}."
            )
        if self.rate_limit_per_s and self.interval_s * self.rate_limit_per_s < 1:
            raise ConfigError(
                f"Polling every {self.interval_s:g} s makes more calls than the rate "
                f"limit of {self.rate_limit_per_s:g} a second allows; the provider "
                f"would refuse them. Poll every {1 / self.rate_limit_per_s:g} s or "
                "less often."
            )


@dataclass(frozen=True)
class PushPolicy:
    """Webhook delivery: one-way latency, failures, the provider's retries.

    ``retry_delays_s`` are the waits before each retry (the first attempt is
    immediate); no attempt is made later than ``give_up_after_s`` after the first.
    Delivery latency is lognormal around ``latency_s`` (its median).
    """

    latency_s: float = 0.2
    latency_spread: float = 0.5
    failure_rate: float = 0.0
    retry_delays_s: tuple[float, ...] = ()
    give_up_after_s: float | None = None
    duplicate_rate: float = 0.0

    def __post_init__(self) -> None:
        rates = (self.failure_rate, self.duplicate_rate)
        if not all(0 <= rate <= 1 for rate in rates) or self.latency_s < 0:
            raise ConfigError(
                "Push needs failure_rate and duplicate_rate between 0 and 1 and a "
                f"latency of 0 s or more, got {self.failure_rate}, "
                f"{self.duplicate_rate} and {self.latency_s}."
            )

    def attempt_offsets(self) -> Floats:
        """Seconds from the first attempt to each attempt the provider makes."""
        offsets = np.concatenate([[0.0], np.cumsum(self.retry_delays_s)])
        if self.give_up_after_s is not None:
            offsets = offsets[offsets <= self.give_up_after_s]
        return np.asarray(offsets, dtype=np.float64)


@dataclass(frozen=True)
class MethodOutcome:
    """What one method did with the events: latencies (NaN where missed), calls."""

    latency_s: Floats
    calls: int
    polls: int = 0
    empty_polls: int = 0
    duplicated: int = 0
    attempts: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def missed(self) -> int:
        """Events this method never detected."""
        return int(np.isnan(self.latency_s).sum())


def simulate_poll(
    arrivals: Floats, policy: PollPolicy, horizon_s: float
) -> MethodOutcome:
    """Latency of every event under polling, and the calls it cost up to the horizon.

    Polls keep running after the horizon until the last event is seen.
    """
    interval = policy.interval_s
    poll_of = np.ceil((arrivals - policy.phase_s) / interval).astype(np.int64)
    poll_of = np.maximum(poll_of, 0)
    last_poll = max(int(math.floor((horizon_s - policy.phase_s) / interval)), 0)
    if poll_of.size:
        last_poll = max(last_poll, int(poll_of[-1]))
    polls = last_poll + 1

    per_poll = np.bincount(poll_of, minlength=polls)
    first_of_poll = np.concatenate([[0], np.cumsum(per_poll)[:-1]])
    rank = np.arange(arrivals.size) - first_of_poll[poll_of]
    page = rank // policy.page_size

    spacing = policy.call_latency_s
    if policy.rate_limit_per_s:
        spacing = max(spacing, 1.0 / policy.rate_limit_per_s)
    seen_at = (
        policy.phase_s + poll_of * interval + page * spacing + policy.call_latency_s
    )

    pages = np.maximum(1, -(-per_poll // policy.page_size))
    return MethodOutcome(
        latency_s=np.asarray(seen_at - arrivals, dtype=np.float64),
        calls=int(pages.sum()),
        polls=polls,
        empty_polls=int((per_poll == 0).sum()),
    )


def simulate_push(
    arrivals: Floats, policy: PushPolicy, rng: np.random.Generator
) -> MethodOutcome:
    """Latency of every event under push: delivery, failures and retries.

    An event whose every attempt fails is missed (NaN). Push spends no API calls.
    """
    offsets = policy.attempt_offsets()
    if policy.failure_rate >= 1:
        failures = np.full(arrivals.size, offsets.size)
    elif policy.failure_rate > 0:
        failures = rng.geometric(1 - policy.failure_rate, size=arrivals.size) - 1
    else:
        failures = np.zeros(arrivals.size, dtype=np.int64)
    delivered = failures < offsets.size

    jitter = rng.lognormal(0.0, policy.latency_spread, size=arrivals.size)
    wait = offsets[np.minimum(failures, offsets.size - 1)]
    latency = np.where(delivered, wait + policy.latency_s * jitter, np.nan)

    duplicated = int(rng.binomial(int(delivered.sum()), policy.duplicate_rate))
    attempts = int(np.minimum(failures + 1, offsets.size).sum())
    return MethodOutcome(
        latency_s=np.asarray(latency, dtype=np.float64),
        calls=0,
        duplicated=duplicated,
        attempts=attempts,
    )


def simulate_hybrid(
    arrivals: Floats, pushed: MethodOutcome, backfill: PollPolicy, horizon_s: float
) -> MethodOutcome:
    """Push (as ``pushed`` delivered it), with a backfill that finds what it missed.

    The backfill lists every event since its last run, so its calls are those of
    polling at the backfill interval; an event push missed is seen by the backfill.
    """
    swept = simulate_poll(arrivals, backfill, horizon_s)
    latency = np.fmin(pushed.latency_s, swept.latency_s)
    recovered = float(np.isnan(pushed.latency_s).sum())
    return MethodOutcome(
        latency_s=latency,
        calls=swept.calls,
        polls=swept.polls,
        empty_polls=swept.empty_polls,
        duplicated=pushed.duplicated,
        attempts=pushed.attempts,
        extra={"recovered_by_backfill": recovered},
    )


def summarise(outcomes: dict[str, MethodOutcome], events: int) -> pd.DataFrame:
    """One row per method, in the lab's columns, latencies in seconds."""
    rows = {name: _row(outcome, events) for name, outcome in outcomes.items()}
    summary = pd.DataFrame.from_dict(rows, orient="index", columns=SUMMARY_COLUMNS)
    summary.index.name = "method"
    return summary


def _row(outcome: MethodOutcome, events: int) -> dict[str, float]:
    seen = outcome.latency_s[~np.isnan(outcome.latency_s)]
    if seen.size:
        p50, p95, p99 = np.quantile(seen, [0.5, 0.95, 0.99])
        worst = float(seen.max())
    else:
        p50 = p95 = p99 = worst = math.nan
    return {
        "p50_s": float(p50),
        "p95_s": float(p95),
        "p99_s": float(p99),
        "max_s": worst,
        "calls": outcome.calls,
        "calls_per_event": outcome.calls / events if events else math.nan,
        "empty_poll_share": outcome.empty_polls / outcome.polls
        if outcome.polls
        else math.nan,
        "missed": outcome.missed,
        "duplicated": outcome.duplicated,
    }


def simulate(
    *,
    events_per_day: float,
    days: float,
    poll_intervals_s: Sequence[float],
    push: PushPolicy,
    backfill_s: float | None = None,
    page_size: int = 100,
    rate_limit_per_s: float | None = None,
    profile: ArrivalProfile | None = None,
    seed: int = 0,
    arrivals: Floats | None = None,
) -> pd.DataFrame:
    """Push, polling at each interval and (with ``backfill_s``) hybrid, summarised.

    ``arrivals`` replaces the Poisson process with a real series of event times in
    seconds (from a delivery log, say), measured from the start of the horizon.
    """
    _check_size(events_per_day, days, [*poll_intervals_s, *[backfill_s or DAY_S]])
    rng = np.random.default_rng(seed)
    if arrivals is None:
        arrivals = poisson_arrivals(events_per_day, days, rng, profile)
    else:
        arrivals = np.sort(np.asarray(arrivals, dtype=np.float64))
    horizon = days * DAY_S

    pushed = simulate_push(arrivals, push, rng)
    outcomes = {"push": pushed}
    for interval in poll_intervals_s:
        policy = PollPolicy(interval, page_size, rate_limit_per_s)
        outcomes[poll_label(interval)] = simulate_poll(arrivals, policy, horizon)
    if backfill_s:
        backfill = PollPolicy(backfill_s, page_size, rate_limit_per_s)
        outcomes[f"hybrid ({poll_label(backfill_s).removeprefix('poll ')})"] = (
            simulate_hybrid(arrivals, pushed, backfill, horizon)
        )
    return summarise(outcomes, int(arrivals.size))


#: The most events, or polls of one interval, one simulation holds in memory
#: (about 1 GiB of arrays at this size).
MAX_SIMULATED = 20_000_000


def _check_size(events_per_day: float, days: float, intervals_s: list[float]) -> None:
    """Refuse a run too large for memory before it allocates anything."""
    events = events_per_day * days
    polls = max((days * DAY_S / i for i in intervals_s if i > 0), default=0.0)
    hours = days * 24  # arrivals are drawn hour by hour
    if not all(math.isfinite(n) for n in (events, polls, hours)):
        raise ConfigError("The simulation needs finite volumes, days and intervals.")
    if max(events, polls, hours) > MAX_SIMULATED:
        raise ConfigError(
            f"The simulation would hold {events:,.0f} events, {polls:.3g} polls and "
            f"{hours:.3g} hours; at most {MAX_SIMULATED:,} of each fit in memory. "
            "Simulate fewer days or longer intervals, and scale the figures."
        )


def poll_label(interval_s: float) -> str:
    """A polling interval as results show it, e.g. "poll 10 min" (as the lab does)."""
    if interval_s % 60 == 0:
        return f"poll {interval_s / 60:g} min"
    return f"poll {interval_s:g} s"
