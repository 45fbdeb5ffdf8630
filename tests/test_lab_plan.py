"""Planning the lab from an engagement, and summarising a run for the report."""

from __future__ import annotations

import pandas as pd
import pytest

from hooklab.errors import ConfigError
from hooklab.studies.lab import (
    LabResult,
    describe_run,
    lab_headline,
    lab_plan,
    plot_calls,
)


def _result(intervals=(60.0, 600.0)) -> LabResult:
    """A small hand-made result, so the summaries can be checked exactly."""
    index = ["push", *(f"poll {i / 60:g} min" for i in intervals)]
    summary = pd.DataFrame(
        {
            "p50_s": [0.004, 30.0, 300.0],
            "p99_s": [0.012, 59.0, 594.0],
            "max_s": [0.02, 60.0, 600.0],
            "calls_per_event": [1.0, 0.5, 0.05],
            "missed": [0, 0, 0],
        },
        index=pd.Index(index, name="method"),
    )
    return LabResult(pd.DataFrame(), summary, 600.0, 5.04, 200, 200, intervals)


def test_plan_takes_webhook_triggers_today_interval_and_busiest_secret(example):
    plan = lab_plan(example)

    assert plan.event_mix == {
        "order.created": 60,
        "invoice.paid": 15,
        "subscription.cancelled": 2,
        "form.submitted": 6,
        "order.fulfilled": 20,
    }
    assert plan.poll_intervals_s == [60, 300, 600, 900]
    assert plan.today_intervals_s == [600]
    assert plan.secret_env == "ACME_SHOP_WEBHOOK_SECRET"  # the shop sends 80 a day
    assert plan.events_per_day == 103


def test_plan_secret_comes_from_the_environment(example, monkeypatch):
    plan = lab_plan(example)
    monkeypatch.delenv("ACME_SHOP_WEBHOOK_SECRET", raising=False)
    assert plan.secret(example) is None

    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "whsec_c2VjcmV0LWZyb20tZW52")
    assert plan.secret(example) == "whsec_c2VjcmV0LWZyb20tZW52"


def test_plan_description_names_the_variable_never_the_value(example, monkeypatch):
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "whsec_c2VjcmV0LWZyb20tZW52")
    text = lab_plan(example).describe()

    assert "Poll intervals: 1 min, 5 min, 10 min (today), 15 min." in text
    assert "$ACME_SHOP_WEBHOOK_SECRET" in text
    assert "c2VjcmV0" not in text


def test_engagement_without_webhook_sources_cannot_run_the_lab(example):
    apps = [app.model_copy(update={"webhooks": False}) for app in example.apps]
    with pytest.raises(ConfigError, match=r"at least one workflow whose source app"):
        lab_plan(example.model_copy(update={"apps": apps}))


def test_describe_run_states_the_scale_and_the_labs_own_rate():
    text = describe_run(_result())
    # 200 events over 4 polls of 10 min = 40 simulated minutes: 7,200 a day.
    assert text == (
        "200 signed webhooks and 2 pollers ran for 5.0 s of real time, standing for "
        "40 simulated minutes at 600x (an arrival rate of 7,200 events a day)."
    )


def test_headline_gives_push_in_ms_and_todays_polling_per_event(example):
    lines = lab_headline(_result(), lab_plan(example))

    assert lines[0].startswith("Push, measured on 200 signed webhooks: median 4.0 ms")
    assert "p99 12.0 ms" in lines[0]
    assert lines[1].startswith("Polling every 10 min (today), measured: median 5.0 min")
    assert "at least 144 API calls a day, 1.4 per event" in lines[1]


def test_plot_calls_shows_push_at_zero_and_projects_to_real_volume():
    fig = plot_calls(_result(), events_per_day=100)

    ax = fig.axes[0]
    heights = [round(bar.get_height(), 3) for bar in ax.patches]
    assert heights == [0.0, 0.5, 0.05, 0.0, 14.4, 1.44]  # measured, then projected
    assert "calls/event" in ax.get_ylabel()


@pytest.mark.parametrize(
    "value", ["shpss_0123456789abcdef0123456789", "whsec_!!!", "not-a-secret!"], ids=str
)
def test_plan_secret_the_lab_cannot_sign_with_is_left_alone(
    example, monkeypatch, value
):
    """A Shopify client secret (the example's shop) is fine for its app, not the lab:
    the lab makes its own instead of refusing to run."""
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", value)

    assert lab_plan(example).secret(example) is None


def _polling_daily(example):
    """The example with its first polled workflow polling once a day."""
    workflows = list(example.workflows)
    index = next(i for i, wf in enumerate(workflows) if wf.current.method == "poll")
    current = workflows[index].current.model_copy(update={"poll_interval_min": 1440})
    workflows[index] = workflows[index].model_copy(update={"current": current})
    return example.model_copy(update={"workflows": workflows})


def test_plan_leaves_a_daily_poll_to_the_simulation(example):
    plan = lab_plan(_polling_daily(example))

    assert max(plan.poll_intervals_s) <= 3600
    assert 86400 in plan.today_intervals_s
    assert plan.simulated_only_s == [86400]
    assert "Not run live: 1440 min (today), longer than 60 min; the scale chapter " in (
        plan.describe()
    )


def test_plan_of_the_example_runs_every_interval_live(example):
    plan = lab_plan(example)

    assert plan.simulated_only_s == []
    assert "Not run live" not in plan.describe()


def test_headline_stands_in_the_longest_run_interval_for_a_daily_poll(example):
    plan = lab_plan(_polling_daily(example))

    lines = lab_headline(_result(), plan)

    stand_in = next(line for line in lines if "1440 min" in line)
    assert stand_in.startswith(
        "Polling every 1440 min (today) is too long to run live; the scale chapter "
        "simulates it. The longest interval run, every 10 min, measured: median 5.0 min"
    )
    assert "at least 1 API call a day, 0.0097 per event." in stand_in
