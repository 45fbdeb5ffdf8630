"""``hooklab simulate`` and ``hooklab lab push|poll``: push against polling."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import click
import pandas as pd

from hooklab.cli._app import finite, main, run_or_exit
from hooklab.cli.pull import lab
from hooklab.simulate import BUSINESS_HOURS, PushPolicy, simulate

if TYPE_CHECKING:
    from hooklab.studies.lab import LabResult

_T = TypeVar("_T")

#: Seconds between the "still running" lines of a long lab run.
HEARTBEAT_S = 10.0


#: ``--interval`` as both ``simulate`` and ``lab poll`` take it, in minutes.
_intervals_option = click.option(
    "--interval",
    "intervals_min",
    type=click.FloatRange(min=0, min_open=True),
    callback=lambda ctx, param, values: tuple(finite(ctx, param, v) for v in values),
    multiple=True,
    default=(1.0, 5.0, 10.0, 15.0),
    show_default=True,
    help="A polling interval in minutes; repeat for several.",
)


@main.command("simulate")
@click.option(
    "--events-per-day",
    type=click.FloatRange(min=0, min_open=True),
    callback=finite,
    required=True,
    help="Average events a day.",
)
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    callback=finite,
    default=7.0,
    show_default=True,
    help="How long to simulate.",
)
@_intervals_option
@click.option(
    "--backfill",
    "backfill_min",
    type=click.FloatRange(min=0, min_open=True),
    callback=finite,
    default=60.0,
    show_default=True,
    help="Backfill interval of the hybrid method, in minutes.",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0, 1),
    callback=finite,
    default=0.01,
    show_default=True,
    help="Share of webhook attempts that fail.",
)
@click.option(
    "--latency",
    "latency_s",
    type=click.FloatRange(min=0),
    callback=finite,
    default=0.2,
    show_default=True,
    help="Median webhook delivery latency, seconds.",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=1, max=100_000),
    default=100,
    show_default=True,
    help="Events per API page.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    callback=finite,
    help="API requests a second the provider allows.",
)
@click.option(
    "--profile",
    type=click.Choice(["flat", "business"]),
    default="business",
    show_default=True,
    help="Arrivals flat, or shaped by hour and weekday.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**32 - 1),
    default=7,
    show_default=True,
    help="Random seed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def simulate_command(
    events_per_day: float,
    days: float,
    intervals_min: tuple[float, ...],
    backfill_min: float,
    failure_rate: float,
    latency_s: float,
    page_size: int,
    rate_limit: float | None,
    profile: str,
    seed: int,
    as_json: bool,
) -> None:
    """Simulate push, polling at each interval, and hybrid at a given volume.

    Latencies are from event to detection, in seconds; calls are API calls. Failed
    webhook attempts are retried immediately, after 5 s, 5 min, 30 min, 2 h, 5 h and
    10 h twice (the Standard Webhooks / Svix schedule); the hybrid's backfill finds
    whatever push misses.

    \b
    Examples:
      hooklab simulate --events-per-day 103 --days 28
      hooklab simulate --events-per-day 10000 --days 365 --interval 1 --json
    """
    push = PushPolicy(
        latency_s=latency_s,
        failure_rate=failure_rate,
        retry_delays_s=(5, 300, 1800, 7200, 18000, 36000, 36000),
    )
    summary = run_or_exit(
        lambda: simulate(
            events_per_day=events_per_day,
            days=days,
            poll_intervals_s=[minutes * 60 for minutes in intervals_min],
            push=push,
            backfill_s=backfill_min * 60,
            page_size=page_size,
            rate_limit_per_s=rate_limit,
            profile=BUSINESS_HOURS if profile == "business" else None,
            seed=seed,
        )
    )
    if as_json:
        click.echo(json.dumps(_records(summary), indent=2))
    else:
        click.echo(
            f"Simulated {days:g} days at {events_per_day:g} events a day "
            f"({profile} arrivals, seed {seed}); push fails {failure_rate:.0%} of "
            f"first attempts, the hybrid backfills every {backfill_min:g} min. "
            "Latencies in seconds."
        )
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            click.echo(summary.round(3).to_string(na_rep="–"))


def _records(summary: pd.DataFrame) -> list[dict[str, object]]:
    rows = summary.reset_index().to_dict(orient="records")
    return [
        {
            key: None if isinstance(v, float) and math.isnan(v) else v
            for key, v in row.items()
        }
        for row in rows
    ]


@lab.command("push")
@click.option(
    "--events",
    default=300,
    show_default=True,
    type=click.IntRange(1, 20_000),
    help="Signed webhooks to deliver.",
)
@click.option("--seed", default=7, show_default=True, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def lab_push(events: int, seed: int, as_json: bool) -> None:
    """Deliver EVENTS signed webhooks to the real receiver on loopback.

    Latency is from the provider creating the event to the receiver's durable
    acknowledgement, in seconds of real time.

    \b
    Example:
      hooklab lab push --events 1000 --json
    """
    _print_lab(_run_lab(events, [], 600.0, seed), as_json)


@lab.command("poll")
@click.option(
    "--events",
    default=300,
    show_default=True,
    type=click.IntRange(1, 20_000),
    help="Events the mock provider creates.",
)
@_intervals_option
@click.option(
    "--scale",
    default=600.0,
    show_default=True,
    type=click.FloatRange(min=1),
    callback=finite,
    help="Simulated seconds per real second (600: 10 minutes take 1 s).",
)
@click.option("--seed", default=7, show_default=True, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def lab_poll(
    events: int,
    intervals_min: tuple[float, ...],
    scale: float,
    seed: int,
    as_json: bool,
) -> None:
    """Poll the mock provider's API at each interval while it delivers webhooks.

    Time is compressed by --scale; polling latencies are given in real-world
    seconds, push (always measured alongside) in real seconds. The run takes about
    four times the longest interval divided by the scale.

    \b
    Examples:
      hooklab lab poll
      hooklab lab poll --interval 1 --interval 10 --events 500 --json
    """
    intervals = [minutes * 60 for minutes in intervals_min]
    _print_lab(_run_lab(events, intervals, scale, seed), as_json)


def _run_lab(events: int, intervals: list[float], scale: float, seed: int) -> LabResult:
    from hooklab.studies.lab import run_lab

    methods = "push only"
    if intervals:
        every = ", ".join(f"{s / 60:g} min" for s in intervals)
        methods = f"push, and polling every {every} at {scale:g}x time"
    click.echo(f"Running the lab on 127.0.0.1: {events} events, {methods}...", err=True)
    return _with_heartbeat(
        lambda: run_lab(
            events=events,
            event_mix={"order.created": 1.0},
            poll_intervals_s=intervals,
            scale=scale,
            seed=seed,
        )
    )


def _with_heartbeat(work: Callable[[], _T]) -> _T:
    """Run ``work`` (through run_or_exit), saying every HEARTBEAT_S that it runs."""
    with _heartbeat():
        return run_or_exit(work)


@contextmanager
def _heartbeat() -> Iterator[None]:
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            elapsed = time.monotonic() - started
            click.echo(f"  ... still running ({elapsed:.0f} s)", err=True)

    thread = threading.Thread(target=beat, name="hooklab-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _print_lab(result: LabResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_records(result.summary), indent=2))
        return
    from hooklab.studies.lab import describe_run

    click.echo(describe_run(result))
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        click.echo(result.summary.round(4).to_string(na_rep="–"))
