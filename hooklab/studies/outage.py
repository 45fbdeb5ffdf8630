"""What an outage of the client's endpoint costs, and what polling costs in quota.

``outage_impact`` replays a provider's retry schedule against an outage: events whose
retries land after the endpoint is back heal by themselves; the rest must be fetched
through the API (backfilled), and a provider that disables the subscription after
too many failures stops delivering even new events until someone re-enables it.

``polling_quota`` sets the API calls that polling spends beside the provider's rate
limits, and what each polling plan of an integration platform costs in delay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hooklab.simulate import DAY_S, Floats, PushPolicy, poll_label
from hooklab.spec import RateLimit
from hooklab.studies._words import agrees, counted

__all__ = [
    "PLATFORM_PLANS_S",
    "DisableRule",
    "OutageImpact",
    "outage_impact",
    "plot_outage",
    "polling_quota",
]

#: Polling intervals integration platforms sell, from the fastest plan to the free one.
PLATFORM_PLANS_S = (60.0, 120.0, 300.0, 900.0)

UNAFFECTED = "unaffected"
HEALED = "healed by retries"
BACKFILL = "needs backfill"


@dataclass(frozen=True)
class DisableRule:
    """When a provider disables (or deletes) a failing webhook subscription.

    Either after ``consecutive_failures`` failed attempts in a row, or once it has
    been failing for ``failing_for_s`` seconds; whichever comes first.
    """

    consecutive_failures: int | None = None
    failing_for_s: float | None = None
    action: str = "disables"

    def describe(self) -> str:
        """The rule in words, as the headline quotes it."""
        parts = []
        if self.consecutive_failures:
            parts.append(
                f"{self.consecutive_failures} failed attempts in a row, counted "
                "across events"
            )
        if self.failing_for_s is not None:
            parts.append(f"failing for {self.failing_for_s / 3600:g} h")
        return " or ".join(parts) or "none"


@dataclass(frozen=True)
class OutageImpact:
    """Each event's fate during an outage, and when the provider gave up on the URL."""

    events: pd.DataFrame  # arrival_s, outcome, delivered_s (NaN when backfilled)
    start_s: float
    end_s: float
    disabled_s: float | None
    rule: DisableRule | None

    def counts(self) -> dict[str, int]:
        """How many events ended each way."""
        found = self.events["outcome"].value_counts()
        return {
            kind: int(found.get(kind, 0)) for kind in (UNAFFECTED, HEALED, BACKFILL)
        }

    def headline(self) -> str:
        """One or two sentences a client can act on.

        Events that arrive during the outage are counted apart from those after
        it: once the provider has disabled the webhook, the later ones are lost to
        push as well, for as long as nobody re-registers it, so their number
        depends on the window shown and is given with it.
        """
        arrival = self.events["arrival_s"]
        outcome = self.events["outcome"]
        during = (arrival >= self.start_s) & (arrival < self.end_s)
        before = arrival < self.start_s
        healed = int((outcome == HEALED).sum())
        lost_during = int(((outcome == BACKFILL) & (during | before)).sum())
        hours = (self.end_s - self.start_s) / 3600

        text = (
            f"A {hours:g} h outage: {counted(healed, 'event')} "
            f"{agrees(healed, 'heals', 'heal')} through the provider's retries and "
            f"{lost_during} must be backfilled through the API."
        )
        if self.disabled_s is None or self.rule is None:
            return text

        after = (self.disabled_s - self.start_s) / 3600
        later = int(((outcome == BACKFILL) & (arrival >= self.end_s)).sum())
        shown = (float(arrival.max()) - self.end_s) / 3600 if len(arrival) else 0.0
        return text + (
            f" The provider {self.rule.action} the webhook {after:.1f} h in (its "
            f"rule: {self.rule.describe()}), so push stays off until it is "
            f"re-registered: the {counted(later, 'event')} of the {shown:.0f} h "
            "after the outage need backfill too."
        )


def outage_impact(
    arrivals: Floats,
    push: PushPolicy,
    start_s: float,
    end_s: float,
    rule: DisableRule | None = None,
) -> OutageImpact:
    """Replay ``push``'s retry schedule for every event against an outage.

    Every attempt inside ``[start_s, end_s)`` fails; every other attempt succeeds.
    After the provider disables the webhook it makes no attempt at all.
    """
    offsets = push.attempt_offsets()
    attempts = arrivals[:, None] + offsets[None, :]
    failed = (attempts >= start_s) & (attempts < end_s)

    disabled = _disabled_at(attempts[failed], rule)
    if disabled is not None:
        failed |= attempts >= disabled  # no delivery at all once disabled

    succeeded = ~failed
    any_success = succeeded.any(axis=1)
    first = np.argmax(succeeded, axis=1)
    delivered = np.where(any_success, attempts[np.arange(arrivals.size), first], np.nan)

    outcome = np.where(~any_success, BACKFILL, np.where(first == 0, UNAFFECTED, HEALED))
    events = pd.DataFrame(
        {"arrival_s": arrivals, "outcome": outcome, "delivered_s": delivered}
    )
    return OutageImpact(events, start_s, end_s, disabled, rule)


def _disabled_at(failures: Floats, rule: DisableRule | None) -> float | None:
    """When the rule trips, given the time of every failed attempt (all in a row)."""
    if rule is None or failures.size == 0:
        return None
    failures = np.sort(failures)
    moments = []
    if rule.consecutive_failures and failures.size >= rule.consecutive_failures:
        moments.append(float(failures[rule.consecutive_failures - 1]))
    if rule.failing_for_s is not None:
        reached = failures[failures - failures[0] >= rule.failing_for_s]
        if reached.size:
            moments.append(float(reached[0]))
    return min(moments) if moments else None


def plot_outage(impact: OutageImpact) -> Figure:
    """Timeline: each event at its arrival, coloured by fate; the outage shaded."""
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax = fig.subplots()
    hours = impact.events["arrival_s"] / 3600
    colours = {UNAFFECTED: "tab:grey", HEALED: "tab:green", BACKFILL: "tab:red"}
    for lane, (outcome, colour) in enumerate(colours.items()):
        chosen = impact.events["outcome"] == outcome
        ax.scatter(
            hours[chosen],
            np.full(int(chosen.sum()), lane),
            s=8,
            color=colour,
            label=f"{outcome} ({int(chosen.sum())})",
        )
    ax.axvspan(
        impact.start_s / 3600,
        impact.end_s / 3600,
        color="tab:red",
        alpha=0.1,
        label="endpoint down",
    )
    if impact.disabled_s is not None and impact.rule:
        ax.axvline(
            impact.disabled_s / 3600,
            color="black",
            linestyle="--",
            label=f"provider {impact.rule.action} the webhook",
        )
    ax.set_yticks(range(len(colours)), list(colours))
    ax.set_xlabel("time (h)")
    ax.set_title("Events during an endpoint outage, by how they reach the client (h)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return fig


def polling_quota(
    intervals_s: Sequence[float],
    *,
    pollers: int = 1,
    rate_limit: RateLimit | None = None,
) -> pd.DataFrame:
    """API calls a day per interval beside the provider's limits, and the delay.

    ``pollers`` is how many resources are polled (orders, fulfilments ...), each
    with one call per poll at least. Shares above 1 mean the plan cannot run; a
    limit the provider does not have leaves its share empty (shown as a dash).
    """
    rows = []
    for interval in intervals_s:
        calls = DAY_S / interval * pollers
        sustained = rate_limit.per_second * DAY_S if rate_limit else math.nan
        cap = rate_limit.daily_cap if rate_limit and rate_limit.daily_cap else math.nan
        rows.append(
            {
                "interval": poll_label(interval).removeprefix("poll "),
                "resources_polled": pollers,
                "calls_per_day": calls,
                "share_of_rate_limit": calls / sustained,
                "share_of_daily_cap": calls / cap,
                "mean_delay_s": interval / 2,
                "worst_delay_s": interval,
            }
        )
    return pd.DataFrame(rows).set_index("interval")
