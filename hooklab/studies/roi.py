"""Return on investment: what moving an engagement's hand-offs to push saves.

Every input comes from the engagement's ``roi`` section and its workflows, so the
figures can be traced: staff time is events a week times minutes per event, errors
are events a week times the error rate, and polling costs API calls whether or not
anything changed. The calls saved are today's polling less what the scope chapter's
recommendation still spends (a hybrid's backfill, a pull's polling). Workflows
already driven by webhooks are left out: there is nothing left to save on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hooklab.spec import Engagement, Workflow
from hooklab.studies.scope import Recommendation, recommend

__all__ = ["RoiResult", "compute_roi", "plot_roi", "plot_tornado", "sensitivity"]

_WEEKS_A_YEAR = 52
_DAY_S = 86400


@dataclass(frozen=True)
class RoiResult:
    """Weekly and yearly figures for moving the engagement's hand-offs to push."""

    currency: str
    per_workflow: pd.DataFrame
    staff_hours_now: float
    staff_hours_saved: float
    errors_now: float
    errors_after: float
    poll_calls_per_week: float
    api_calls_after_per_week: float
    weekly_gross_savings: float
    weekly_upkeep: float
    weekly_net_savings: float
    implementation_cost: float
    payback_weeks: float
    net_12_months: float

    def headline(self) -> list[str]:
        """The figures a client reads first, as sentences."""
        if self.per_workflow.empty:
            errors = "Every workflow already runs on webhooks: no hand-off to automate."
        else:
            worst = self.per_workflow.sort_values("error_rate_now").iloc[-1]
            errors = (
                f"{worst.name} hand-off errors: {worst.error_rate_now:.1%} today, "
                f"about {worst.error_rate_after:.1%} once automated."
            )
        return [
            f"Staff time on hand-offs: {self.staff_hours_now:.1f} h a week today; "
            f"push saves about {self.staff_hours_saved:.1f} h a week.",
            errors,
            f"Net savings {self.weekly_net_savings:,.0f} {self.currency} a week; "
            f"{self._payback()}; 12-month net "
            f"{self.net_12_months:,.0f} {self.currency}.",
        ]

    def _payback(self) -> str:
        if math.isfinite(self.payback_weeks):
            return f"payback in {self.payback_weeks:.1f} weeks"
        if self.weekly_gross_savings <= 0:
            return "no payback: nothing is saved at these figures"
        return "no payback: upkeep costs more than push saves"


def compute_roi(engagement: Engagement) -> RoiResult:
    """Weekly savings, payback and 12-month net for the engagement."""
    roi = engagement.roi
    advised = {rec.workflow: rec for rec in recommend(engagement)}
    rows = [
        _workflow_row(wf, engagement, advised[wf.id]) for wf in engagement.workflows
    ]
    table = pd.DataFrame(rows).set_index("workflow")
    table = table[table["method_today"] != "webhook"]

    staff_saved = float(table["staff_hours_saved"].sum())
    errors_now = float(table["errors_now"].sum())
    errors_after = float(table["errors_after"].sum())
    calls = float(table["poll_calls_per_week"].sum())
    calls_after = float(table["api_calls_after_per_week"].sum())

    gross = (
        staff_saved * roi.hourly_cost
        + (errors_now - errors_after) * roi.cost_per_error
        + (calls - calls_after) / 1000 * roi.api_cost_per_1000_calls
    )
    upkeep = roi.upkeep_per_month * 12 / _WEEKS_A_YEAR
    net = gross - upkeep
    payback = roi.implementation_cost / net if net > 0 else math.inf

    return RoiResult(
        currency=engagement.client.currency,
        per_workflow=table,
        staff_hours_now=float(table["staff_hours_now"].sum()),
        staff_hours_saved=staff_saved,
        errors_now=errors_now,
        errors_after=errors_after,
        poll_calls_per_week=calls,
        api_calls_after_per_week=calls_after,
        weekly_gross_savings=gross,
        weekly_upkeep=upkeep,
        weekly_net_savings=net,
        implementation_cost=roi.implementation_cost,
        payback_weeks=payback,
        net_12_months=net * _WEEKS_A_YEAR - roi.implementation_cost,
    )


def _workflow_row(
    wf: Workflow, engagement: Engagement, advice: Recommendation
) -> dict[str, object]:
    roi = engagement.roi
    events = wf.events_per_day * 7
    hours_now = events * wf.staff_minutes_per_event / 60
    interval = wf.current.poll_interval_min
    polls = (
        7 * _DAY_S / (interval * 60) if wf.current.method == "poll" and interval else 0
    )
    after = min(wf.error_rate_today, roi.automated_error_rate)
    return {
        "workflow": wf.id,
        "method_today": wf.current.method,
        "events_per_week": events,
        "staff_hours_now": hours_now,
        "staff_hours_saved": hours_now * roi.time_saved_share,
        "error_rate_now": wf.error_rate_today,
        "error_rate_after": after,
        "errors_now": events * wf.error_rate_today,
        "errors_after": events * after,
        "poll_calls_per_week": polls,
        "api_calls_after_per_week": advice.api_calls_per_day * 7,
    }


def plot_roi(result: RoiResult) -> Figure:
    """Hours a week before and after, and cumulative net savings over 12 months."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    hours, money = fig.subplots(1, 2)

    table = result.per_workflow
    positions = np.arange(len(table))
    hours.barh(positions + 0.2, table["staff_hours_now"], 0.4, label="today")
    after = table["staff_hours_now"] - table["staff_hours_saved"]
    hours.barh(positions - 0.2, after, 0.4, label="with push")
    hours.set_yticks(positions, table.index)
    hours.set_xlabel("staff hours a week (h)")
    hours.set_title("Staff time on hand-offs (h/week)")
    hours.legend()

    weeks = np.arange(0, _WEEKS_A_YEAR + 1)
    cumulative = weeks * result.weekly_net_savings - result.implementation_cost
    money.plot(weeks, cumulative, label="cumulative net savings")
    money.axhline(0, color="grey", linewidth=0.8)
    if math.isfinite(result.payback_weeks) and result.payback_weeks <= weeks[-1]:
        money.axvline(
            result.payback_weeks,
            linestyle="--",
            color="green",
            label=f"payback ({result.payback_weeks:.1f} weeks)",
        )
    money.set_xlabel("weeks after go-live")
    money.set_ylabel(f"net savings ({result.currency})")
    money.set_title(f"Cumulative net savings over 12 months ({result.currency})")
    money.legend()
    return fig


#: The inputs a consultant is least sure of, and how to vary each one.
_UNCERTAIN_INPUTS: dict[str, str] = {
    "hourly_cost": "roi",
    "cost_per_error": "roi",
    "automated_error_rate": "roi",
    "time_saved_share": "roi",
    "implementation_cost": "roi",
    "upkeep_per_month": "roi",
    "events_per_day": "workflows",
    "staff_minutes_per_event": "workflows",
}


def sensitivity(engagement: Engagement, swing: float = 0.3) -> pd.DataFrame:
    """12-month net with each uncertain input moved ``swing`` down and up alone.

    Shares (rates between 0 and 1) are kept inside that range. Rows are sorted by
    how far the result moves, widest first: the order of a tornado chart.
    """
    base = compute_roi(engagement).net_12_months
    rows = []
    for name, section in _UNCERTAIN_INPUTS.items():
        low = compute_roi(_scaled(engagement, name, section, 1 - swing)).net_12_months
        high = compute_roi(_scaled(engagement, name, section, 1 + swing)).net_12_months
        rows.append({"input": name, "low": low, "high": high, "base": base})

    table = pd.DataFrame(rows).set_index("input")
    table["range"] = (table["high"] - table["low"]).abs()
    return table.sort_values("range", ascending=False)


def _scaled(
    engagement: Engagement, name: str, section: str, factor: float
) -> Engagement:
    if section == "roi":
        value = getattr(engagement.roi, name) * factor
        if name in ("automated_error_rate", "time_saved_share"):
            value = min(value, 1.0)
        return engagement.model_copy(
            update={"roi": engagement.roi.model_copy(update={name: value})}
        )
    workflows = [
        wf.model_copy(update={name: getattr(wf, name) * factor})
        for wf in engagement.workflows
    ]
    return engagement.model_copy(update={"workflows": workflows})


def plot_tornado(table: pd.DataFrame, currency: str, swing: float = 0.3) -> Figure:
    """The tornado chart: 12-month net as each input moves, widest bar on top."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    rows = table.iloc[::-1]
    base = float(rows["base"].iloc[0])
    positions = np.arange(len(rows))

    low_left = rows[["low", "high"]].min(axis=1)
    ax.barh(
        positions,
        rows["low"] - base,
        left=base,
        color="tab:red",
        label=f"input {swing:.0%} lower",
    )
    ax.barh(
        positions,
        rows["high"] - base,
        left=base,
        color="tab:green",
        label=f"input {swing:.0%} higher",
    )
    ax.axvline(base, color="black", linewidth=0.8)
    ax.set_yticks(positions, [name.replace("_", " ") for name in rows.index])
    ax.set_xlim(min(float(low_left.min()), base) * 0.9 if base > 0 else None)
    ax.set_xlabel(f"12-month net savings ({currency})")
    ax.set_title(f"What moves the 12-month net: each input ±{swing:.0%} ({currency})")
    ax.legend(loc="lower right", fontsize="small")
    return fig
