"""The onboarding checklist: seven steps, the client's answers and what hooklab sees.

Each step carries the status the engagement records and a finding that hooklab derives
from the rest of the engagement, so a step marked done while the file shows a gap
(a webhook source with no signing secret, say) stands out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from matplotlib.figure import Figure

from hooklab.spec import CHECKLIST_STEPS, Engagement
from hooklab.studies._words import agrees, counted

__all__ = [
    "STEP_TITLES",
    "ChecklistRow",
    "checklist",
    "checklist_headline",
    "checklist_table",
    "plot_checklist",
]

STEP_TITLES: dict[str, str] = {
    "events_and_triggers": "Events and triggers",
    "data_schema": "Data schema",
    "authentication": "Authentication",
    "retries_and_idempotency": "Retries and idempotency",
    "slas": "SLAs",
    "monitoring_and_logs": "Monitoring and logs",
    "documentation": "Documentation",
}

_STATUS_ORDER = ("done", "in_progress", "todo", "not_applicable")
_STATUS_COLOURS = {
    "done": "tab:green",
    "in_progress": "tab:orange",
    "todo": "tab:red",
    "not_applicable": "tab:grey",
}


@dataclass(frozen=True)
class ChecklistRow:
    """One onboarding step: the client's status and notes, and hooklab's finding."""

    step: str
    title: str
    status: str
    notes: str
    finding: str


def checklist(engagement: Engagement) -> list[ChecklistRow]:
    """The seven steps in order, each with its status and a derived finding."""
    rows = []
    for step in CHECKLIST_STEPS:
        item = getattr(engagement.checklist, step)
        finding = _FINDINGS[step](engagement)
        rows.append(
            ChecklistRow(step, STEP_TITLES[step], item.status, item.notes, finding)
        )
    return rows


def checklist_table(rows: Sequence[ChecklistRow]) -> pd.DataFrame:
    """The checklist as a table indexed by step title."""
    table = pd.DataFrame([asdict(row) for row in rows]).set_index("title")
    return table.drop(columns="step")


def plot_checklist(rows: Sequence[ChecklistRow]) -> Figure:
    """One bar per step, coloured by status, so the gaps read at a glance."""
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.subplots()
    titles = [row.title for row in rows][::-1]
    colours = [_STATUS_COLOURS[row.status] for row in rows][::-1]
    ax.barh(titles, [1] * len(rows), color=colours)
    for status in _STATUS_ORDER:
        ax.bar(0, 0, color=_STATUS_COLOURS[status], label=status.replace("_", " "))
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.set_title(f"Onboarding checklist ({len(rows)} steps), coloured by status")
    # Beside the bars, not over them: every bar spans the whole width.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return fig


def _events(engagement: Engagement) -> str:
    triggers = sorted({wf.trigger for wf in engagement.workflows})
    total = sum(wf.events_per_day for wf in engagement.workflows)
    return f"{len(triggers)} trigger events, {total:g} events a day in all."


def _schema(engagement: Engagement) -> str:
    actions = sum(len(wf.actions) for wf in engagement.workflows)
    return f"{actions} actions need a field mapping from their trigger's payload."


def _authentication(engagement: Engagement) -> str:
    unsigned = [
        app.id
        for app in engagement.apps
        if app.webhooks and (app.secret is None or app.signature_scheme is None)
    ]
    sources = {wf.source for wf in engagement.workflows}
    gaps = sorted(set(unsigned) & sources)
    if gaps:
        return (
            "Workflow triggers sent by webhook without a named signing secret: "
            f"{', '.join(gaps)} (the security chapter lists every app that sends "
            "webhooks)."
        )
    return "Every workflow trigger sent by webhook has a scheme and a named secret."


def _retries(engagement: Engagement) -> str:
    critical = [wf.id for wf in engagement.workflows if wf.critical]
    return (
        f"{_workflows(len(critical), 'critical')} "
        f"{agrees(len(critical), 'needs', 'need')} de-duplication by event id and "
        "a dead-letter queue with replay."
    )


def _slas(engagement: Engagement) -> str:
    tight = [wf.id for wf in engagement.workflows if wf.latency_target_s <= 300]
    return (
        f"{_workflows(len(tight))} must act within 5 minutes: "
        f"{', '.join(tight) or '-'}."
    )


def _monitoring(engagement: Engagement) -> str:
    polled = [wf.id for wf in engagement.workflows if wf.current.method != "webhook"]
    have = "has" if len(polled) == 1 else "have"
    return f"{_workflows(len(polled))} {have} no delivery log today (poll or manual)."


def _workflows(count: int, adjective: str = "") -> str:
    """'1 critical workflow', '3 workflows': the count with its noun agreeing."""
    return counted(count, f"{adjective} workflow".strip())


def _documentation(engagement: Engagement) -> str:
    return "The integration document is generated in the documentation chapter."


_FINDINGS: dict[str, Callable[[Engagement], str]] = {
    "events_and_triggers": _events,
    "data_schema": _schema,
    "authentication": _authentication,
    "retries_and_idempotency": _retries,
    "slas": _slas,
    "monitoring_and_logs": _monitoring,
    "documentation": _documentation,
}


def _mid_sentence(title: str) -> str:
    """A title as it reads inside a sentence: 'Retries' -> 'retries', 'SLAs' kept."""
    first = title.split(" ", 1)[0]
    return title if first[1:2].isupper() else title[:1].lower() + title[1:]


def checklist_headline(rows: Sequence[ChecklistRow]) -> str:
    """One sentence: how many steps are done, and which are still open."""
    done = [row for row in rows if row.status in ("done", "not_applicable")]
    open_steps = [_mid_sentence(row.title) for row in rows if row not in done]
    rest = f"; open: {', '.join(open_steps)}" if open_steps else ""
    return f"Onboarding checklist: {len(done)} of {len(rows)} steps done{rest}."
