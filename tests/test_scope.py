"""Scope: the push, pull or hybrid rules, each exercised on its own."""

from __future__ import annotations

import pytest

from hooklab.spec import Engagement
from hooklab.studies import scope


def _variant(example: Engagement, app_changes=None, wf_changes=None) -> Engagement:
    """The example with its first app and first workflow changed."""
    apps = [example.apps[0].model_copy(update=app_changes or {}), *example.apps[1:]]
    workflows = [
        example.workflows[0].model_copy(update=wf_changes or {}),
        *example.workflows[1:],
    ]
    return example.model_copy(update={"apps": apps, "workflows": workflows})


def test_example_recommendations_match_the_rules(example):
    methods = {rec.workflow: rec.method for rec in scope.recommend(example)}
    assert methods == {
        "new-order": "hybrid",
        "invoice-paid": "hybrid",
        "subscription-cancelled": "hybrid",
        "form-to-lead": "push",
        "order-fulfilled": "push",
    }


def test_source_without_webhooks_is_pulled_within_the_target(example):
    engagement = _variant(example, app_changes={"webhooks": False})

    rec = scope.recommend(engagement)[0]

    assert rec.method == "pull"
    assert rec.interval_s == 60  # the 60 s target allows a 1-minute poll at most
    assert rec.api_calls_per_day == 1440
    assert "sends no webhooks" in rec.reason


def test_critical_workflow_without_an_api_is_push_only(example):
    """Hybrid needs an API to backfill through; without one push is all there is."""
    engagement = _variant(example, app_changes={"api_base_url": None})

    assert scope.recommend(engagement)[0].method == "push"


def test_relaxed_target_on_a_quiet_workflow_is_a_daily_pull(example):
    changes = {"critical": False, "error_rate_today": 0.01, "latency_target_s": 86400}
    engagement = _variant(example, wf_changes=changes)

    rec = scope.recommend(engagement)[0]

    assert (rec.method, rec.interval_s, rec.api_calls_per_day) == ("pull", 86400, 1)


def test_hybrid_reason_quotes_the_error_rate_and_backfill(example):
    rec = scope.recommend(example)[0]
    assert "6% of hand-offs go wrong today" in rec.reason
    assert "every 15 min" in rec.reason


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (60, "1 min"),
        (900, "15 min"),
        (3600, "1 h"),
        (86400, "1 day"),
        (172800, "2 days"),
        (90, "90 s"),
    ],
)
def test_human_duration_reads_as_a_consultant_says_it(seconds, text):
    assert scope.human_duration(seconds) == text


def test_headline_counts_each_method(example):
    headline = scope.scope_headline(scope.recommend(example))
    assert headline.startswith("Of 5 workflows, 2 should be push, 3 hybrid and 0 pull")


def test_tables_and_plot_cover_every_workflow(example):
    recs = scope.recommend(example)
    assert list(scope.recommendations_table(recs).index) == [
        w.id for w in example.workflows
    ]
    assert (
        scope.workflows_table(example).loc["new-order", "today"] == "poll every 10 min"
    )

    fig = scope.plot_api_calls(example, recs)

    ax = fig.axes[0]
    assert "calls/day" in ax.get_ylabel()
    assert ax.get_title()
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[:5] == [144, 0, 0, 0, 144]  # today: two workflows poll every 10 min
