"""The onboarding checklist: statuses from the engagement, findings derived from it."""

from __future__ import annotations

from hooklab.studies.checklist import (
    checklist,
    checklist_headline,
    checklist_table,
    plot_checklist,
)


def test_seven_steps_in_order_with_the_clients_status(example):
    rows = checklist(example)

    assert [row.title for row in rows] == [
        "Events and triggers",
        "Data schema",
        "Authentication",
        "Retries and idempotency",
        "SLAs",
        "Monitoring and logs",
        "Documentation",
    ]
    assert [row.status for row in rows][:3] == ["done", "in_progress", "in_progress"]


def test_authentication_finding_names_unsigned_webhook_sources(example):
    finding = checklist(example)[2].finding
    assert finding == (
        "Workflow triggers sent by webhook without a named signing secret: forms "
        "(the security chapter lists every app that sends webhooks)."
    )


def test_authentication_finding_is_clean_when_every_source_signs(example):
    apps = [
        app.model_copy(update={"secret": "shop_webhook", "signature_scheme": "hmac"})
        for app in example.apps
    ]
    finding = checklist(example.model_copy(update={"apps": apps}))[2].finding
    assert finding.startswith("Every workflow trigger sent by webhook has")


def test_headline_counts_done_steps_and_names_the_open_ones(example):
    headline = checklist_headline(checklist(example))
    assert headline.startswith(
        "Onboarding checklist: 2 of 7 steps done; open: data schema"
    )


def test_table_and_plot_show_every_step(example):
    rows = checklist(example)
    assert len(checklist_table(rows)) == 7

    ax = plot_checklist(rows).axes[0]
    assert len([p for p in ax.patches if p.get_width() == 1]) == 7
    assert ax.get_title() == "Onboarding checklist (7 steps), coloured by status"
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # beside


def test_findings_agree_in_number(example):
    """'1 workflow must', never '1 workflows must'."""
    findings = {row.step: row.finding for row in checklist(example)}
    assert findings["slas"] == "1 workflow must act within 5 minutes: new-order."
    assert findings["monitoring_and_logs"].startswith("5 workflows have no delivery")
