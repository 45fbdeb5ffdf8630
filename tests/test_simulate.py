"""The vectorised simulation, against closed forms and against the live lab."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hooklab.errors import ConfigError
from hooklab.simulate import (
    BUSINESS_HOURS,
    SUMMARY_COLUMNS,
    ArrivalProfile,
    PollPolicy,
    PushPolicy,
    poisson_arrivals,
    simulate,
    simulate_hybrid,
    simulate_poll,
    simulate_push,
)
from hooklab.studies import lab


def test_uniform_arrivals_wait_half_the_interval_on_average():
    """Closed form: arrivals uniform over time wait interval / 2 for the next poll."""
    arrivals = np.linspace(0.5, 86400 - 0.5, 86400)

    outcome = simulate_poll(arrivals, PollPolicy(600), horizon_s=86400)

    assert outcome.latency_s.mean() == pytest.approx(300, rel=1e-3)
    assert outcome.latency_s.max() <= 600
    assert outcome.polls == 145  # 0, 600, ..., 86400 s
    assert outcome.calls == 145 + 144 * 5  # 600 events a poll: 6 pages each


def test_pages_wait_for_the_rate_limit():
    arrivals = np.full(250, 10.0)  # 250 events in one poll window, 100 a page
    policy = PollPolicy(60, page_size=100, rate_limit_per_s=2)

    outcome = simulate_poll(arrivals, policy, horizon_s=60)

    assert sorted(set(outcome.latency_s)) == [50.0, 50.5, 51.0]
    assert outcome.calls == 3 + 1  # three pages at 60 s, one empty poll at 0 s
    assert outcome.empty_polls == 1


def test_a_quiet_day_is_mostly_empty_polls():
    arrivals = np.array([3600.0 * 5])
    outcome = simulate_poll(arrivals, PollPolicy(60), horizon_s=86400)
    assert outcome.empty_polls / outcome.polls == pytest.approx(1440 / 1441)


def test_push_median_latency_is_the_delivery_latency():
    arrivals = np.arange(20_000, dtype=float)
    policy = PushPolicy(latency_s=0.2, latency_spread=0.5)

    outcome = simulate_push(arrivals, policy, np.random.default_rng(1))

    assert np.median(outcome.latency_s) == pytest.approx(0.2, rel=0.03)
    assert outcome.calls == 0 and outcome.missed == 0
    assert outcome.attempts == 20_000


def test_push_retries_follow_the_schedule_until_the_provider_gives_up():
    """Svix-style schedule: attempts at 0, 5 s, 5 min; a 60 s give-up cuts the last."""
    policy = PushPolicy(
        latency_s=0.0,
        latency_spread=0.0,
        failure_rate=0.5,
        retry_delays_s=(5, 300),
        give_up_after_s=60,
    )
    assert list(policy.attempt_offsets()) == [0.0, 5.0]

    outcome = simulate_push(np.zeros(40_000), policy, np.random.default_rng(2))

    latencies = outcome.latency_s[~np.isnan(outcome.latency_s)]
    assert set(latencies) == {0.0, 5.0}
    assert outcome.missed / 40_000 == pytest.approx(0.25, abs=0.01)  # two failures


def test_hybrid_backfill_recovers_every_event_push_missed():
    arrivals = np.linspace(0, 86400, 1000, endpoint=False)
    push = PushPolicy(failure_rate=1.0)  # the endpoint is down all day
    pushed = simulate_push(arrivals, push, np.random.default_rng(3))

    outcome = simulate_hybrid(arrivals, pushed, PollPolicy(900), horizon_s=86400)

    assert outcome.missed == 0
    assert outcome.extra["recovered_by_backfill"] == 1000
    assert outcome.latency_s.max() <= 900
    assert outcome.calls == 97  # one call per backfill poll, 0 to 86400 s


def test_poisson_arrivals_match_volume_and_profile():
    rng = np.random.default_rng(4)

    times = poisson_arrivals(1000, 28, rng, BUSINESS_HOURS)

    assert times.size == pytest.approx(28_000, abs=4 * math.sqrt(28_000))
    assert np.all(np.diff(times) >= 0) and times[-1] < 28 * 86400
    hours = (times // 3600 % 24).astype(int)
    assert np.sum(hours == 19) > 5 * np.sum(hours == 3)  # evening beats night


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: ArrivalProfile(hourly=(1.0,) * 23), id="short-profile"),
        pytest.param(lambda: PollPolicy(0), id="zero-interval"),
        pytest.param(lambda: PushPolicy(failure_rate=1.5), id="rate-over-one"),
        pytest.param(
            lambda: poisson_arrivals(10, 0, np.random.default_rng()), id="no-days"
        ),
    ],
)
def test_impossible_parameters_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_simulate_summarises_every_method_in_the_labs_columns():
    summary = simulate(
        events_per_day=500,
        days=7,
        poll_intervals_s=[60, 600],
        push=PushPolicy(failure_rate=0.05, retry_delays_s=(5, 300)),
        backfill_s=3600,
        seed=5,
    )

    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary.index) == [
        "push",
        "poll 1 min",
        "poll 10 min",
        "hybrid (60 min)",
    ]
    assert summary.loc["hybrid (60 min)", "missed"] == 0
    assert summary.loc["poll 10 min", "p50_s"] == pytest.approx(300, rel=0.05)
    assert summary.loc["poll 1 min", "calls"] > summary.loc["poll 10 min", "calls"]


def test_same_seed_same_numbers():
    kwargs = dict(
        events_per_day=100, days=3, poll_intervals_s=[300], push=PushPolicy(), seed=9
    )
    assert simulate(**kwargs).equals(simulate(**kwargs))


@pytest.mark.slow
def test_simulation_agrees_with_the_live_lab_within_ten_percent():
    """Fed the lab's own event times, the simulated poll medians match the measured.

    A poller thread wakes a few milliseconds late; the scale is kept low enough that
    this stays a small share of the shortest interval (5 ms is 3 s of 300 s).
    """
    intervals = [300.0, 600.0]
    result = lab.run_lab(
        events=80,
        event_mix={"order.created": 1},
        poll_intervals_s=intervals,
        scale=600,
        seed=11,
    )
    created = result.records.groupby("event_id")["created_at"].first()
    seconds = created.map(lambda stamp: stamp.timestamp()).to_numpy()
    arrivals = np.sort((seconds - result.clock_start) * result.scale)

    summary = simulate(
        events_per_day=0,
        days=arrivals.max() / 86400,
        poll_intervals_s=intervals,
        push=PushPolicy(),
        arrivals=arrivals,
    )

    for interval in intervals:
        label = lab.method_label(interval)
        measured = result.summary.loc[label, "p50_s"]
        assert summary.loc[label, "p50_s"] == pytest.approx(measured, rel=0.10)


def test_arrivals_from_real_delivery_logs(shared_data):
    """Stripe's Unix `created` and GitHub's ISO `delivered_at` both become seconds."""
    import json

    from hooklab.simulate import arrivals_from_times

    stripe = json.loads(
        (shared_data / "delivery_logs/stripe_list_events.json").read_text()
    )
    github = json.loads(
        (shared_data / "delivery_logs/github_list_deliveries.json").read_text()
    )

    from_stripe = arrivals_from_times([event["created"] for event in stripe["data"]])
    from_github = arrivals_from_times([item["delivered_at"] for item in github])

    assert from_stripe[0] == 0 and np.all(np.diff(from_stripe) >= 0)
    assert from_stripe[-1] == 1642649111 - 1619701111
    assert from_github[1] == 86400  # two deliveries a day apart


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (["yesterday"], "neither Unix seconds nor ISO 8601"),
        (["2026-12-04T10:00:00"], "has no time zone"),
    ],
)
def test_unreadable_event_times_are_refused(times, message):
    from hooklab.simulate import arrivals_from_times

    with pytest.raises(ConfigError, match=message):
        arrivals_from_times(times)


def test_simulate_runs_on_a_real_series_of_times():
    from hooklab.simulate import arrivals_from_times

    times = [f"2026-12-04T{hour:02d}:00:00Z" for hour in range(0, 24, 2)]
    summary = simulate(
        events_per_day=0,
        days=1,
        poll_intervals_s=[600],
        push=PushPolicy(),
        arrivals=arrivals_from_times(times),
    )

    assert summary.loc["poll 10 min", "p50_s"] == 0  # every event lands on a poll
    assert summary.loc["poll 10 min", "calls"] == 145


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"events_per_day": 1e9, "days": 1}, "at most 20,000,000"),
        ({"events_per_day": 10, "days": 1, "backfill_s": 1e-6}, "at most 20,000,000"),
        ({"events_per_day": math.inf, "days": 1}, "finite"),
    ],
    ids=["too-many-events", "too-many-polls", "infinite"],
)
def test_simulation_too_large_for_memory_is_refused_before_allocating(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        simulate(poll_intervals_s=[60], push=PushPolicy(), **options)


def test_polling_faster_than_the_rate_limit_is_refused() -> None:
    """The provider would refuse the extra calls; the simulation must not count them."""
    with pytest.raises(ConfigError, match="Poll every 1000 s or less often"):
        PollPolicy(60, rate_limit_per_s=0.001)


def test_simulation_of_too_many_hours_is_refused_though_events_are_few() -> None:
    """Arrivals are drawn hour by hour: 10^8 days is 2.4 billion hour bins."""
    with pytest.raises(ConfigError, match="2.4e\\+09 hours"):
        simulate(
            events_per_day=0.001,
            days=1e8,
            poll_intervals_s=[1e15],
            push=PushPolicy(),
        )
