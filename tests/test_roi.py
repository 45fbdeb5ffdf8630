"""ROI: the example's worked figures, and how each input moves them."""

from __future__ import annotations

import math

import pytest

from hooklab.studies.roi import compute_roi, plot_roi


def test_example_worked_figures(example):
    """About 3.5 staff hours a week saved; order hand-off errors from 6% to 1%."""
    result = compute_roi(example)

    assert result.staff_hours_now == pytest.approx(5.02, abs=0.01)
    assert result.staff_hours_saved == pytest.approx(3.51, abs=0.01)
    new_order = result.per_workflow.loc["new-order"]
    assert new_order.error_rate_now == pytest.approx(0.06)
    assert new_order.error_rate_after == pytest.approx(0.01)
    # 2 workflows polled every 10 min: 2 * 144 calls a day * 7 days.
    assert result.poll_calls_per_week == 2016


def test_example_money_adds_up(example):
    """Weekly gross = hours saved * rate + errors avoided * cost per error."""
    result = compute_roi(example)
    errors_avoided = result.errors_now - result.errors_after

    gross = result.staff_hours_saved * 30 + errors_avoided * 15
    assert result.weekly_gross_savings == pytest.approx(gross)
    assert result.weekly_upkeep == pytest.approx(60 * 12 / 52)
    assert result.payback_weeks == pytest.approx(2400 / result.weekly_net_savings)
    assert result.net_12_months == pytest.approx(52 * result.weekly_net_savings - 2400)


def test_headline_states_hours_errors_and_payback(example):
    lines = compute_roi(example).headline()
    assert lines[0].endswith("push saves about 3.5 h a week.")
    assert (
        lines[1] == "new-order hand-off errors: 6.0% today, about 1.0% once automated."
    )
    assert "payback in" in lines[2]


def test_workflows_already_on_webhooks_save_nothing(example):
    workflows = [
        wf.model_copy(
            update={"current": wf.current.model_copy(update={"method": "webhook"})}
        )
        for wf in example.workflows
    ]
    result = compute_roi(example.model_copy(update={"workflows": workflows}))

    assert result.per_workflow.empty
    assert result.weekly_gross_savings == 0
    assert math.isinf(result.payback_weeks)


def test_api_call_costs_count_towards_savings(example):
    roi = example.roi.model_copy(update={"api_cost_per_1000_calls": 1.0})
    base = compute_roi(example).weekly_gross_savings

    result = compute_roi(example.model_copy(update={"roi": roi}))

    assert result.weekly_gross_savings == pytest.approx(base + 2016 / 1000)


def test_plot_has_titles_units_and_payback_marker(example):
    fig = plot_roi(compute_roi(example))

    hours, money = fig.axes
    assert "(h)" in hours.get_xlabel()
    assert "USD" in money.get_ylabel()
    labels = [line.get_label() for line in money.get_lines()]
    assert any(label.startswith("payback (4.9 weeks)") for label in labels)
