"""Push against pull at the client's own volume: simulation, cost, outage, comparison.

The lab measures a few hundred events; this study takes the engagement's busiest
webhook source, its provider's published delivery behaviour (``hooklab.providers``)
and its workflows' volumes, simulates weeks of traffic, and answers the questions a
client asks: how late is each method, what does polling cost at each interval, what
happens when the endpoint is down, and how do push and pull compare, in numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hooklab.errors import ConfigError
from hooklab.providers import PRESETS, ProviderPreset
from hooklab.simulate import (
    BUSINESS_HOURS,
    DAY_S,
    MethodOutcome,
    PollPolicy,
    PushPolicy,
    poisson_arrivals,
    poll_label,
    simulate_hybrid,
    simulate_poll,
    simulate_push,
    summarise,
)
from hooklab.spec import App, Engagement
from hooklab.studies._words import counted
from hooklab.studies.outage import (
    PLATFORM_PLANS_S,
    DisableRule,
    OutageImpact,
    outage_impact,
    polling_quota,
)
from hooklab.studies.scope import recommend

__all__ = [
    "ScaleStudy",
    "busiest_webhook_source",
    "comparison_table",
    "delivery_policy",
    "interval_sweep",
    "outage",
    "plot_interval_cost",
    "quota",
    "plot_latency_cdf",
    "scale_study",
]

#: Polling intervals compared when the engagement polls at none of them.
_INTERVALS_S = (60.0, 300.0, 600.0, 900.0)

#: Retries assumed where a provider publishes a give-up time but not its delays.
_ASSUMED_RETRIES = 8

#: Disable rules the presets state in numbers (their text is in hooklab.providers).
_DISABLE_RULES = {
    "shopify": DisableRule(consecutive_failures=8, action="deletes"),
}

#: Delivery failures outside outages: a healthy endpoint still times out now and then.
_BACKGROUND_FAILURE_RATE = 0.005


@dataclass(frozen=True)
class ScaleStudy:
    """A simulated stretch of the busiest webhook source's traffic."""

    app: App
    preset: ProviderPreset | None
    push: PushPolicy
    schedule_note: str
    events_per_day: float
    days: float
    arrivals: np.ndarray
    outcomes: dict[str, MethodOutcome]
    summary: pd.DataFrame
    today_interval_s: float | None

    def headline(self) -> list[str]:
        """The simulated figures as sentences."""
        push = self.summary.loc["push"]
        lines = [
            f"Simulated {self.days:g} days of {self.app.name} at "
            f"{self.events_per_day:g} events a day: push p95 "
            f"{push.p95_s:.2f} s, {push.missed:.0f} events missed for good."
        ]
        if self.today_interval_s:
            today = self.summary.loc[poll_label(self.today_interval_s)]
            lines.append(
                f"Polling every {poll_label(self.today_interval_s)[5:]} as today: p95 "
                f"{today.p95_s / 60:.1f} min and {today.calls / self.days:,.0f} API "
                f"calls a day, {today.empty_poll_share:.0%} of them finding nothing."
            )
        return lines


def busiest_webhook_source(engagement: Engagement) -> App:
    """The app that sends the most webhook-able events a day."""
    volume: dict[str, float] = {}
    for wf in engagement.workflows:
        if engagement.app(wf.source).webhooks:
            volume[wf.source] = volume.get(wf.source, 0.0) + wf.events_per_day
    if not volume:
        raise ConfigError(
            "No workflow's source app sends webhooks (apps[].webhooks: true), so "
            "there is no push side to study."
        )
    return engagement.app(max(volume, key=lambda app_id: volume[app_id]))


def delivery_policy(preset: ProviderPreset | None) -> tuple[PushPolicy, str]:
    """The push policy a preset implies, and a note on what was assumed.

    Where the provider publishes its delays they are used as they are. Where it
    publishes only a give-up time, retries are assumed to double up to that time;
    the note says so, for the report.
    """
    if preset is None:
        return PushPolicy(
            failure_rate=_BACKGROUND_FAILURE_RATE
        ), "no preset: no retries"
    if preset.retry_delays_s is not None:
        policy = PushPolicy(
            failure_rate=_BACKGROUND_FAILURE_RATE,
            retry_delays_s=preset.retry_delays_s,
            give_up_after_s=preset.give_up_after_s,
        )
        return policy, f"{preset.provider}'s published retry schedule"
    if preset.give_up_after_s:
        first = preset.give_up_after_s / (2**_ASSUMED_RETRIES - 1)
        delays = tuple(first * 2**n for n in range(_ASSUMED_RETRIES))
        policy = PushPolicy(
            failure_rate=_BACKGROUND_FAILURE_RATE,
            retry_delays_s=delays,
            give_up_after_s=preset.give_up_after_s,
        )
        hours = preset.give_up_after_s / 3600
        return policy, (
            f"{preset.provider} publishes only a {hours:g} h give-up time; "
            f"{_ASSUMED_RETRIES} doubling retries within it are assumed"
        )
    return PushPolicy(failure_rate=_BACKGROUND_FAILURE_RATE), (
        f"{preset.provider} publishes no retry schedule; no retries assumed"
    )


def scale_study(
    engagement: Engagement, *, days: float = 28, seed: int = 0
) -> ScaleStudy:
    """Simulate ``days`` of the busiest webhook source, by push, polling and hybrid."""
    app = busiest_webhook_source(engagement)
    flows = [wf for wf in engagement.workflows if wf.source == app.id]
    per_day = sum(wf.events_per_day for wf in flows)
    today = sorted(
        wf.current.poll_interval_min * 60
        for wf in flows
        if wf.current.method == "poll" and wf.current.poll_interval_min
    )
    preset = PRESETS.get(app.provider)
    push, note = delivery_policy(preset)

    rng = np.random.default_rng(seed)
    arrivals = poisson_arrivals(per_day, days, rng, BUSINESS_HOURS)
    rate = app.rate_limit.per_second if app.rate_limit else None
    outcomes = {"push": simulate_push(arrivals, push, rng)}
    for interval in sorted({*_INTERVALS_S, *today}):
        policy = PollPolicy(interval, rate_limit_per_s=rate)
        outcomes[poll_label(interval)] = simulate_poll(arrivals, policy, days * DAY_S)
    # The backfill the scope chapter recommends for this source's hybrid
    # workflows (the most frequent of them), or hourly when none is hybrid.
    backfills = [
        rec.interval_s
        for rec in recommend(engagement)
        if rec.method == "hybrid" and rec.source == app.id and rec.interval_s
    ]
    backfill = PollPolicy(min(backfills, default=3600.0), rate_limit_per_s=rate)
    label = poll_label(backfill.interval_s).removeprefix("poll ")
    outcomes[f"hybrid ({label})"] = simulate_hybrid(
        arrivals, outcomes["push"], backfill, days * DAY_S
    )

    return ScaleStudy(
        app=app,
        preset=preset,
        push=push,
        schedule_note=note,
        events_per_day=per_day,
        days=days,
        arrivals=arrivals,
        outcomes=outcomes,
        summary=summarise(outcomes, int(arrivals.size)),
        today_interval_s=today[0] if today else None,
    )


def plot_latency_cdf(study: ScaleStudy) -> Figure:
    """Share of events detected within a given time, one line per method."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, outcome in study.outcomes.items():
        seen = np.sort(outcome.latency_s[~np.isnan(outcome.latency_s)])
        share = np.arange(1, seen.size + 1) / outcome.latency_s.size
        style = "--" if name.startswith("hybrid") else "-"  # it overlaps push
        ax.step(np.maximum(seen, 1e-3), share, style, where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("time from event to detection (s, log scale)")
    ax.set_ylabel("share of events detected")
    ax.set_title(
        f"Latency by method: {study.days:g} simulated days of {study.app.name} (s)"
    )
    ax.legend(fontsize="small")
    return fig


def interval_sweep(
    engagement: Engagement, study: ScaleStudy, minutes: range = range(1, 61)
) -> pd.DataFrame:
    """Calls a day, money a month and delay for each polling interval in minutes.

    One call per poll at least, plus extra pages when a poll finds more than a page.
    """
    price = engagement.roi.api_cost_per_1000_calls
    rows = []
    for minute in minutes:
        interval = minute * 60.0
        outcome = simulate_poll(
            study.arrivals, PollPolicy(interval), study.days * DAY_S
        )
        calls_a_day = outcome.calls / study.days
        rows.append(
            {
                "interval_min": minute,
                "calls_per_day": calls_a_day,
                "cost_per_month": calls_a_day * 30 / 1000 * price,
                "p95_delay_s": float(np.nanquantile(outcome.latency_s, 0.95)),
            }
        )
    return pd.DataFrame(rows).set_index("interval_min")


def plot_interval_cost(
    sweep: pd.DataFrame, currency: str, today_min: float | None
) -> Figure:
    """API calls a day (and their price) against the interval, beside the delay."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    calls = fig.subplots()
    calls.plot(
        sweep.index, sweep["calls_per_day"], color="tab:blue", label="API calls a day"
    )
    calls.set_yscale("log")
    calls.set_xlabel("polling interval (min)")
    calls.set_ylabel("API calls a day (calls/day, log scale)")

    delay = calls.twinx()
    delay.plot(
        sweep.index, sweep["p95_delay_s"] / 60, color="tab:orange", label="p95 delay"
    )
    delay.set_ylabel("p95 delay before detection (min)")
    if today_min:
        calls.axvline(today_min, color="grey", linestyle="--", label="today")

    price = sweep["cost_per_month"].max()
    money = f"; at most {price:,.2f} {currency} a month" if price else ""
    calls.set_title(f"Cost of polling against its delay (calls/day, min){money}")
    handles, labels = calls.get_legend_handles_labels()
    more_handles, more_labels = delay.get_legend_handles_labels()
    calls.legend(handles + more_handles, labels + more_labels, loc="upper center")
    return fig


def quota(engagement: Engagement, study: ScaleStudy) -> pd.DataFrame:
    """Polling at today's interval and each platform plan, against the API's limits.

    One poller per workflow that reads the source (each polls its own resource).
    """
    pollers = sum(1 for wf in engagement.workflows if wf.source == study.app.id)
    intervals = sorted(
        {
            *PLATFORM_PLANS_S,
            *([study.today_interval_s] if study.today_interval_s else []),
        }
    )
    return polling_quota(intervals, pollers=pollers, rate_limit=study.app.rate_limit)


def outage(study: ScaleStudy, *, start_h: float = 9, hours: float = 6) -> OutageImpact:
    """An outage of the client's endpoint starting ``start_h`` hours into the study."""
    rule = _DISABLE_RULES.get(study.preset.provider) if study.preset else None
    start = start_h * 3600
    window = study.arrivals[study.arrivals < start + hours * 3600 + 2 * DAY_S]
    return outage_impact(window, study.push, start, start + hours * 3600, rule)


def comparison_table(
    engagement: Engagement,
    study: ScaleStudy,
    measured: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Push against pull on the aspects consultants usually give as adjectives.

    ``measured`` is the lab chapter's results (its ``summary`` rows), when present.
    """
    app, preset = study.app, study.preset
    today = study.today_interval_s or _INTERVALS_S[-1]
    pull = study.summary.loc[poll_label(today)]
    push = study.summary.loc["push"]
    lab_push = _lab_row(measured, "push")
    secret = engagement.secrets.get(app.secret) if app.secret else None
    limit = app.rate_limit

    rows = {
        "direction": (
            f"{app.name} calls the client's endpoint",
            f"the client calls {app.name}'s API every {poll_label(today)[5:]}",
        ),
        "latency": (
            f"p95 {push.p95_s:.2f} s simulated"
            + (
                f"; p50 {lab_push['p50_s'] * 1000:.1f} ms measured on loopback"
                if lab_push
                else ""
            ),
            f"p95 {pull.p95_s / 60:.1f} min, worst {pull.max_s / 60:.1f} min",
        ),
        "control": (
            f"the provider decides when to send and retry ({study.schedule_note})",
            "the client decides when to ask, and can catch up at any time",
        ),
        "efficiency": (
            "0 API calls; one request per event, to the client",
            f"{counted(round(pull.calls / study.days), 'API call')} a day, "
            f"{pull.empty_poll_share:.0%} finding nothing",
        ),
        "retries": (
            _retry_text(preset),
            "the client retries its own failed calls; the next poll catches up",
        ),
        "rate limits": (
            "none consumed",
            _quota_text(pull.calls / study.days, limit),
        ),
        "monitoring": (
            "the provider's delivery log, plus the receiver's /metrics",
            "the client's own call log; a silent API shows nothing",
        ),
        "security": (
            f"{app.signature_scheme or 'no'} signature on the raw body"
            + (f", secret in ${secret.env}" if secret else ", no secret named"),
            "an API token from an environment variable, sent over TLS",
        ),
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["push", "pull"])
    table.index.name = "aspect"
    return table


def _lab_row(measured: dict[str, Any] | None, method: str) -> dict[str, Any] | None:
    for row in (measured or {}).get("summary", []):
        if row.get("method") == method:
            return dict(row)
    return None


def _retry_text(preset: ProviderPreset | None) -> str:
    if preset is None:
        return "unknown: no preset for this provider"
    if preset.give_up_after_s:
        return f"the provider retries for up to {preset.give_up_after_s / 3600:g} h"
    if preset.retry_delays_s == ():
        return "the provider does not retry; failed deliveries must be redelivered"
    return "the provider retries; its give-up time is not published"


def _quota_text(calls_a_day: float, limit: Any) -> str:
    if limit is None:
        return f"{calls_a_day:,.0f} calls a day against an unpublished limit"
    share = calls_a_day / (limit.per_second * DAY_S)
    text = f"{share:.2%} of the sustained rate limit"
    if limit.daily_cap:
        text += f", {calls_a_day / limit.daily_cap:.0%} of the daily cap"
    return text if math.isfinite(share) else "no limit published"
