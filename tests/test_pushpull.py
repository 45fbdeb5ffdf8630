"""Push against pull at the client's volume: the study behind the scale chapter."""

from __future__ import annotations

import pytest

from hooklab.errors import ConfigError
from hooklab.providers import PRESETS
from hooklab.studies import pushpull


@pytest.fixture(scope="module")
def study():
    from hooklab.spec import load_engagement

    return pushpull.scale_study(load_engagement(), days=14, seed=3)


def test_study_takes_the_busiest_webhook_source_and_its_preset(study):
    assert study.app.id == "shop"  # 60 + 20 events a day
    assert study.events_per_day == 80
    assert study.preset is PRESETS["shopify"]
    assert study.today_interval_s == 600
    assert study.arrivals.size == pytest.approx(80 * 14, rel=0.15)


def test_polling_today_matches_its_closed_form(study):
    today = study.summary.loc["poll 10 min"]
    assert today.p50_s == pytest.approx(300, rel=0.1)
    assert today.max_s <= 600
    assert today.calls == pytest.approx(144 * 14, abs=2)


def test_headline_states_push_and_todays_polling(study):
    first, second = study.headline()
    assert first.startswith("Simulated 14 days of Acme storefront at 80 events a day")
    assert second.startswith("Polling every 10 min as today: p95 ")
    assert "144 API calls a day" in second


def test_unpublished_delays_are_assumed_and_said_so():
    policy, note = pushpull.delivery_policy(PRESETS["shopify"])

    assert note.startswith("shopify publishes only a 4 h give-up time")
    assert len(policy.retry_delays_s) == 8
    assert sum(policy.retry_delays_s) == pytest.approx(14_400)


def test_published_delays_are_used_as_they_are():
    policy, note = pushpull.delivery_policy(PRESETS["svix"])
    assert policy.retry_delays_s == PRESETS["svix"].retry_delays_s
    assert note == "svix's published retry schedule"


def test_interval_sweep_trades_calls_for_delay(example, study):
    sweep = pushpull.interval_sweep(example, study, range(1, 31))

    assert sweep.loc[1, "calls_per_day"] > 10 * sweep.loc[30, "calls_per_day"]
    assert sweep.loc[30, "p95_delay_s"] > 10 * sweep.loc[1, "p95_delay_s"]
    assert (sweep["cost_per_month"] == 0).all()  # the example's API calls are free


def test_outage_with_shopifys_rule_deletes_the_subscription(study):
    impact = pushpull.outage(study, start_h=9, hours=6)
    assert impact.disabled_s is not None
    assert "The provider deletes the webhook" in impact.headline()


def test_comparison_fills_every_aspect_with_numbers(example, study):
    measured = {"summary": [{"method": "push", "p50_s": 0.0031}]}

    table = pushpull.comparison_table(example, study, measured)

    assert list(table.index) == [
        "direction", "latency", "control", "efficiency", "retries",
        "rate limits", "monitoring", "security",
    ]  # fmt: skip
    assert "p50 3.1 ms measured on loopback" in table.loc["latency", "push"]
    assert table.loc["efficiency", "pull"].startswith("144 API calls a day")
    assert "$ACME_SHOP_WEBHOOK_SECRET" in table.loc["security", "push"]
    assert "retries for up to 4 h" in table.loc["retries", "push"]


def test_engagement_without_webhooks_has_no_push_side(example):
    apps = [app.model_copy(update={"webhooks": False}) for app in example.apps]
    with pytest.raises(ConfigError, match="no push side"):
        pushpull.scale_study(example.model_copy(update={"apps": apps}))


def test_plots_have_titles_and_units(example, study):
    cdf = pushpull.plot_latency_cdf(study).axes[0]
    assert "(s, log scale)" in cdf.get_xlabel()
    assert len(cdf.get_lines()) == len(study.outcomes)

    sweep = pushpull.interval_sweep(example, study, range(1, 11))
    cost = pushpull.plot_interval_cost(sweep, "USD", 10).axes
    assert cost[0].get_xlabel() == "polling interval (min)"
    assert "calls/day" in cost[0].get_ylabel() and "(min)" in cost[1].get_ylabel()


def test_quota_covers_platform_plans_and_today_for_each_poller(example, study):
    table = pushpull.quota(example, study)

    assert list(table.index) == ["1 min", "2 min", "5 min", "10 min", "15 min"]
    # Two shop workflows each poll their own resource: 2 * 144 calls at 10 min.
    assert table.loc["10 min", "calls_per_day"] == 288
    assert table.loc["1 min", "share_of_rate_limit"] == pytest.approx(2880 / 172_800)


def test_hybrid_backfills_as_often_as_the_scope_chapter_recommends(example, study):
    from hooklab.studies.scope import recommend

    [interval] = {
        rec.interval_s
        for rec in recommend(example)
        if rec.method == "hybrid" and rec.source == study.app.id
    }

    hybrid = [name for name in study.summary.index if name.startswith("hybrid")]
    assert hybrid == [f"hybrid ({interval / 60:g} min)"]
