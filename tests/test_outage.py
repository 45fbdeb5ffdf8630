"""Outage impact against a retry schedule, and polling quota."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hooklab.simulate import PushPolicy
from hooklab.spec import RateLimit
from hooklab.studies.outage import (
    DisableRule,
    outage_impact,
    plot_outage,
    polling_quota,
)

HOUR = 3600.0
# Svix's published schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
SVIX = PushPolicy(retry_delays_s=(5, 300, 1800, 7200, 18000, 36000, 36000))


def test_short_outage_heals_entirely_through_retries():
    arrivals = np.array([0.5 * HOUR, 1.0 * HOUR + 10, 1.2 * HOUR, 3 * HOUR])

    impact = outage_impact(arrivals, SVIX, start_s=HOUR, end_s=1.25 * HOUR)

    assert list(impact.events["outcome"]) == [
        "unaffected",
        "healed by retries",
        "healed by retries",
        "unaffected",
    ]
    # The event at 1 h + 10 s fails at 0, 5 s, 5 min and lands at the 30-min retry.
    assert impact.events["delivered_s"][1] == pytest.approx(HOUR + 10 + 2105)
    assert impact.headline() == (
        "A 0.25 h outage: 2 events heal through the provider's retries and 0 must "
        "be backfilled through the API."
    )


def test_outage_longer_than_the_schedule_needs_backfill():
    policy = PushPolicy(retry_delays_s=(60, 300))  # gives up after 6 minutes
    arrivals = np.array([HOUR + 1.0, 1.5 * HOUR])

    impact = outage_impact(arrivals, policy, start_s=HOUR, end_s=2 * HOUR)

    assert impact.counts() == {
        "unaffected": 0,
        "healed by retries": 0,
        "needs backfill": 2,
    }
    assert impact.events["delivered_s"].isna().all()


def test_provider_disables_after_consecutive_failures_and_new_events_are_lost():
    """A Shopify-style rule: a run of failures removes the subscription."""
    arrivals = np.arange(0, 10 * HOUR, 600.0)  # an event every 10 minutes
    rule = DisableRule(consecutive_failures=8, action="deletes")

    impact = outage_impact(arrivals, SVIX, start_s=HOUR, end_s=3 * HOUR, rule=rule)

    assert impact.disabled_s is not None and HOUR < impact.disabled_s < 3 * HOUR
    after = impact.events[impact.events["arrival_s"] >= 3 * HOUR]
    assert (after["outcome"] == "needs backfill").all()  # nothing comes any more
    lost_later = int((after["outcome"] == "needs backfill").sum())
    headline = impact.headline()
    assert "The provider deletes the webhook" in headline
    assert "8 failed attempts in a row, counted across events" in headline
    assert f"the {lost_later} events of the 7 h after the outage need backfill" in (
        headline
    )


def test_failing_for_rule_trips_only_when_the_outage_lasts_long_enough():
    rule = DisableRule(failing_for_s=5 * HOUR)
    arrivals = np.arange(0, 24 * HOUR, 900.0)

    short = outage_impact(arrivals, SVIX, HOUR, 3 * HOUR, rule)
    long = outage_impact(arrivals, SVIX, HOUR, 12 * HOUR, rule)

    assert short.disabled_s is None
    assert long.disabled_s == pytest.approx(6 * HOUR, abs=900)


def test_outage_plot_shades_the_outage_and_counts_each_fate():
    arrivals = np.arange(0, 6 * HOUR, 300.0)
    impact = outage_impact(arrivals, SVIX, HOUR, 2 * HOUR, DisableRule(3))

    ax = plot_outage(impact).axes[0]

    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("healed by retries (") for label in labels)
    assert "endpoint down" in labels
    assert ax.get_xlabel() == "time (h)"


def test_polling_quota_against_the_shops_limit():
    limit = RateLimit(requests=2, per_seconds=1, daily_cap=5000)

    table = polling_quota([60, 600], pollers=2, rate_limit=limit)

    assert table.loc["1 min", "calls_per_day"] == 2880
    assert table.loc["1 min", "share_of_daily_cap"] == pytest.approx(2880 / 5000)
    assert table.loc["10 min", "share_of_rate_limit"] == pytest.approx(288 / 172800)
    assert table.loc["10 min", "mean_delay_s"] == 300


def test_polling_quota_without_limits_has_no_shares():
    """No cap is not 0 % of a cap: the share is absent, and the report shows a dash."""
    table = polling_quota([300])
    assert math.isnan(table.loc["5 min", "share_of_daily_cap"])
    assert math.isnan(table.loc["5 min", "share_of_rate_limit"])
    assert table.loc["5 min", "calls_per_day"] == 288
    assert table.loc["5 min", "resources_polled"] == 1
