"""Scope: push, pull or hybrid for each workflow of an engagement, with the reason.

The rules a consultant applies, written down so they are the same for every client:

1. The source app sends no webhooks: **pull**, at the longest interval whose worst-case
   delay still meets the workflow's latency target.
2. The workflow is critical (money or customers) or loses 5% or more of hand-offs today,
   and the source has an API: **hybrid**, webhooks for speed plus a scheduled backfill
   through the API, because no provider guarantees delivery (retries stop after hours or
   days, and order is never promised).
3. The latency target is a day or more and the workflow is not critical: **pull** once a
   day is simpler to run than a public endpoint.
4. Otherwise: **push**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hooklab.spec import App, Engagement, Workflow
from hooklab.studies._words import counted

__all__ = [
    "Recommendation",
    "human_duration",
    "plot_api_calls",
    "recommend",
    "recommendations_table",
    "scope_headline",
    "workflows_table",
]

Method = Literal["push", "pull", "hybrid"]

#: Poll and backfill intervals a consultant would actually configure, in seconds.
_NICE_INTERVALS_S = (60, 120, 300, 600, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400)
_DAY_S = 86400
_CRITICAL_ERROR_RATE = 0.05


@dataclass(frozen=True)
class Recommendation:
    """The advice for one workflow."""

    workflow: str
    trigger: str
    source: str
    today: str
    method: Method
    interval_s: float | None
    api_calls_per_day: float
    reason: str


def recommend(engagement: Engagement) -> list[Recommendation]:
    """One recommendation per workflow, in the engagement's order."""
    return [_recommend(wf, engagement.app(wf.source)) for wf in engagement.workflows]


def recommendations_table(recommendations: Sequence[Recommendation]) -> pd.DataFrame:
    """The recommendations as a table indexed by workflow id."""
    return pd.DataFrame([asdict(r) for r in recommendations]).set_index("workflow")


def _recommend(wf: Workflow, app: App) -> Recommendation:
    critical = wf.critical or wf.error_rate_today >= _CRITICAL_ERROR_RATE
    target = human_duration(wf.latency_target_s)
    if not app.webhooks:
        interval = _longest_interval_within(wf.latency_target_s)
        reason = (
            f"{app.name} sends no webhooks; polling every {human_duration(interval)} "
            f"keeps the worst-case delay within the {target} target."
        )
        return _make(wf, app, "pull", interval, reason)

    if critical and app.api_base_url:
        backfill = _longest_interval_within(max(wf.latency_target_s, 900))
        why = "money or customers depend on it" if wf.critical else "errors are high"
        reason = (
            f"Act on webhooks from {app.name} within seconds. {why.capitalize()} "
            f"({wf.error_rate_today:.0%} of hand-offs go wrong today), so a backfill "
            f"through the API every {human_duration(backfill)} catches any delivery "
            "the provider gives up on."
        )
        return _make(wf, app, "hybrid", backfill, reason)

    if wf.latency_target_s >= _DAY_S and not critical:
        reason = (
            f"The {target} target allows one API read a day, "
            "which is simpler to run than a public webhook endpoint."
        )
        return _make(wf, app, "pull", _DAY_S, reason)

    poll_calls = _DAY_S / _longest_interval_within(wf.latency_target_s)
    reason = (
        f"{app.name} sends webhooks, which meet the {target} "
        f"target with no API calls; polling would need {poll_calls:.0f} calls a day."
    )
    return _make(wf, app, "push", None, reason)


def _make(
    wf: Workflow, app: App, method: Method, interval_s: float | None, reason: str
) -> Recommendation:
    calls = _DAY_S / interval_s if interval_s else 0.0
    return Recommendation(
        workflow=wf.id,
        trigger=wf.trigger,
        source=app.id,
        today=_today(wf),
        method=method,
        interval_s=interval_s,
        api_calls_per_day=calls,
        reason=reason,
    )


def _longest_interval_within(target_s: float) -> float:
    """The longest nice interval whose worst-case delay (one interval) meets target."""
    fitting = [i for i in _NICE_INTERVALS_S if i <= target_s]
    return float(fitting[-1] if fitting else _NICE_INTERVALS_S[0])


def _today(wf: Workflow) -> str:
    if wf.current.method == "poll" and wf.current.poll_interval_min:
        return f"poll every {human_duration(wf.current.poll_interval_min * 60)}"
    return wf.current.method


def human_duration(seconds: float) -> str:
    """60 -> '1 min', 86400 -> '1 day': durations as a consultant says them."""
    for unit, size in (("day", _DAY_S), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{seconds:g} s"


def workflows_table(engagement: Engagement) -> pd.DataFrame:
    """The workflows as scoped: trigger, source, method today, volume and target."""
    rows = [
        {
            "workflow": wf.id,
            "trigger": wf.trigger,
            "source": wf.source,
            "today": _today(wf),
            "events_per_day": wf.events_per_day,
            "latency_target": human_duration(wf.latency_target_s),
            "actions": len(wf.actions),
        }
        for wf in engagement.workflows
    ]
    return pd.DataFrame(rows).set_index("workflow")


def plot_api_calls(
    engagement: Engagement, recommendations: Sequence[Recommendation]
) -> Figure:
    """API calls a day per workflow, today against the recommendation (log scale)."""
    today = [
        _DAY_S / (wf.current.poll_interval_min * 60)
        if wf.current.method == "poll" and wf.current.poll_interval_min
        else 0.0
        for wf in engagement.workflows
    ]
    advised = [rec.api_calls_per_day for rec in recommendations]
    names = [rec.workflow for rec in recommendations]

    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(names))
    ax.bar(positions - 0.2, today, 0.4, label="today")
    ax.bar(positions + 0.2, advised, 0.4, label="recommended")
    ax.set_xticks(positions, names, rotation=15)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylabel("API calls a day (calls/day)")
    ax.set_title("Polling API calls a day per workflow: today against recommended")
    ax.legend()
    return fig


def scope_headline(recommendations: Sequence[Recommendation]) -> str:
    """One sentence: how many workflows go each way, and the polling it saves."""
    counts = {method: 0 for method in ("push", "hybrid", "pull")}
    for rec in recommendations:
        counts[rec.method] += 1
    calls = sum(rec.api_calls_per_day for rec in recommendations)
    return (
        f"Of {counted(len(recommendations), 'workflow')}, {counts['push']} should "
        f"be push, {counts['hybrid']} hybrid and {counts['pull']} pull, for "
        f"{counted(round(calls), 'API call')} a day in all."
    )
