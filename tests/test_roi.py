"""ROI: the example's worked figures, and how each input moves them."""

from __future__ import annotations

import math

import pytest

from hooklab.studies.roi import compute_roi, plot_roi, plot_tornado, sensitivity


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
    lines = result.headline()
    assert lines[1].startswith("Every workflow already runs on webhooks")
    assert "no payback: nothing is saved at these figures" in lines[2]


def test_upkeep_above_savings_says_no_payback_instead_of_infinity(example):
    roi = example.roi.model_copy(update={"upkeep_per_month": 50_000})

    result = compute_roi(example.model_copy(update={"roi": roi}))

    assert result.weekly_net_savings < 0
    assert "no payback: upkeep costs more than push saves" in result.headline()[2]
    assert "inf" not in " ".join(result.headline())


def test_api_call_costs_count_towards_savings(example):
    roi = example.roi.model_copy(update={"api_cost_per_1000_calls": 1.0})
    base = compute_roi(example).weekly_gross_savings

    result = compute_roi(example.model_copy(update={"roi": roi}))

    # Today's polling (2,016 calls a week) less what the recommendation still
    # spends (847): backfills every 15 min for new orders (672), hourly for
    # cancellations (168) and daily for paid invoices (7).
    assert result.api_calls_after_per_week == 847
    assert result.weekly_gross_savings == pytest.approx(base + (2016 - 847) / 1000)


def test_plot_has_titles_units_and_payback_marker(example):
    fig = plot_roi(compute_roi(example))

    hours, money = fig.axes
    assert "(h)" in hours.get_xlabel()
    assert "USD" in money.get_ylabel()
    labels = [line.get_label() for line in money.get_lines()]
    assert any(label.startswith("payback (4.9 weeks)") for label in labels)


def test_sensitivity_moves_one_input_at_a_time(example):
    table = sensitivity(example, swing=0.3)

    base = compute_roi(example).net_12_months
    assert (table["base"] == base).all()
    assert set(table.index) >= {"hourly_cost", "cost_per_error", "events_per_day"}
    # Hourly cost enters only through staff hours saved: 3.51 h * 30 * 0.3 * 52.
    hourly = table.loc["hourly_cost"]
    assert hourly.high - base == pytest.approx(3.5117 * 30 * 0.3 * 52, rel=1e-3)
    assert hourly.low - base == pytest.approx(-(hourly.high - base))


def test_sensitivity_is_sorted_widest_first_and_keeps_shares_below_one(example):
    roi = example.roi.model_copy(update={"time_saved_share": 0.9})
    table = sensitivity(example.model_copy(update={"roi": roi}), swing=0.5)

    assert list(table["range"]) == sorted(table["range"], reverse=True)
    saved_all = example.model_copy(
        update={"roi": roi.model_copy(update={"time_saved_share": 1.0})}
    )
    assert table.loc["time_saved_share", "high"] == compute_roi(saved_all).net_12_months


def test_tornado_has_a_bar_pair_per_input_and_money_units(example):
    table = sensitivity(example)

    ax = plot_tornado(table, "USD").axes[0]

    assert len(ax.patches) == 2 * len(table)
    assert ax.get_xlabel() == "12-month net savings (USD)"
    assert "±30%" in ax.get_title()
