"""One year at 10,000 events a day: the vectorised simulation against a plain loop.

Both compute the same summary (push, five poll intervals, hybrid) from the same
arrivals and the same random draws, in this one run. Targets: the simulation in
under 2 s and 1 GiB, with the same numbers as the loop.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pandas as pd

from hooklab.simulate import (
    BUSINESS_HOURS,
    PushPolicy,
    poisson_arrivals,
    simulate,
)

EVENTS_PER_DAY = 10_000
DAYS = 365
INTERVALS_S = [60.0, 120.0, 300.0, 600.0, 900.0]
BACKFILL_S = 3600.0
PAGE_SIZE = 100
SEED = 1
PUSH = PushPolicy(
    latency_s=0.2, failure_rate=0.02, retry_delays_s=(5, 300, 1800, 7200, 18000)
)


def _loop_summary(arrivals: np.ndarray, seed_state: dict) -> pd.DataFrame:
    """The same summary, one event at a time in plain Python."""
    rng = np.random.default_rng()
    rng.bit_generator.state = seed_state
    offsets = [0.0]
    for delay in PUSH.retry_delays_s:
        offsets.append(offsets[-1] + delay)
    failures = rng.geometric(1 - PUSH.failure_rate, size=len(arrivals)) - 1
    jitter = rng.lognormal(0.0, PUSH.latency_spread, size=len(arrivals))
    times = arrivals.tolist()
    horizon = DAYS * 86400.0

    push = []
    for fails, spread in zip(failures.tolist(), jitter.tolist(), strict=True):
        push.append(
            offsets[fails] + PUSH.latency_s * spread
            if fails < len(offsets)
            else math.nan
        )
    rows = {"push": _row(push, 0, 0, 0, len(times))}
    for interval in INTERVALS_S:
        latencies, calls, polls, empty = _loop_poll(times, interval, horizon)
        rows[f"poll {interval / 60:g} min"] = _row(
            latencies, calls, polls, empty, len(times)
        )
    backfill, calls, polls, empty = _loop_poll(times, BACKFILL_S, horizon)
    hybrid = [
        b if math.isnan(p) else min(p, b) for p, b in zip(push, backfill, strict=True)
    ]
    rows["hybrid (60 min)"] = _row(hybrid, calls, polls, empty, len(times))
    return pd.DataFrame.from_dict(rows, orient="index")


def _loop_poll(times: list[float], interval: float, horizon: float):
    """Polling without a rate limit: every page of a poll returns at once."""
    latencies, per_poll = [], {}
    for t in times:
        poll = max(math.ceil(t / interval), 0)
        per_poll[poll] = per_poll.get(poll, 0) + 1
        latencies.append(poll * interval - t)
    last = max(int(horizon // interval), max(per_poll) if per_poll else 0)
    calls = sum(max(1, -(-per_poll.get(k, 0) // PAGE_SIZE)) for k in range(last + 1))
    empty = sum(1 for k in range(last + 1) if k not in per_poll)
    return latencies, calls, last + 1, empty


def _row(latencies, calls, polls, empty, events):
    seen = sorted(x for x in latencies if not math.isnan(x))
    return {
        "p50_s": _quantile(seen, 0.5),
        "p95_s": _quantile(seen, 0.95),
        "p99_s": _quantile(seen, 0.99),
        "max_s": seen[-1],
        "calls": calls,
        "calls_per_event": calls / events,
        "empty_poll_share": empty / polls if polls else math.nan,
        "missed": len(latencies) - len(seen),
    }


def _quantile(ordered: list[float], q: float) -> float:
    """numpy's default (linear) quantile, by hand."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    """Time both, compare their numbers, print the ratio against the targets."""
    arrivals = poisson_arrivals(
        EVENTS_PER_DAY, DAYS, np.random.default_rng(SEED), BUSINESS_HOURS
    )
    state = np.random.default_rng(SEED + 1).bit_generator.state

    tracemalloc.start()
    start = time.perf_counter()
    fast = simulate(
        events_per_day=EVENTS_PER_DAY,
        days=DAYS,
        poll_intervals_s=INTERVALS_S,
        push=PUSH,
        backfill_s=BACKFILL_S,
        page_size=PAGE_SIZE,
        seed=SEED + 1,
        arrivals=arrivals,
    )
    fast_s = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    start = time.perf_counter()
    slow = _loop_summary(arrivals, state)
    slow_s = time.perf_counter() - start

    columns = list(slow.columns)
    same = np.allclose(
        fast[columns].to_numpy(float),
        slow[columns].to_numpy(float),
        rtol=1e-9,
        equal_nan=True,
    )
    print(f"   {arrivals.size:,} events, {len(fast)} methods")
    verdict = "met" if fast_s < 2 and peak < 2**30 else "MISSED"
    print(
        f"   vectorised: {fast_s:6.2f} s, peak {peak / 2**20:,.0f} MiB "
        f"(targets < 2 s, < 1024 MiB: {verdict})"
    )
    print(
        f"   plain loop: {slow_s:6.2f} s; vectorised is {slow_s / fast_s:.0f}x faster"
    )
    print(f"   same numbers as the loop: {'yes' if same else 'NO'}")
    if not same:
        print((fast[columns] - slow[columns]).to_string())
