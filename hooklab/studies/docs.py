"""Generated documentation: the integration document handed over with the report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from hooklab import __version__
from hooklab.redact import redact
from hooklab.spec import Engagement
from hooklab.studies.scope import Recommendation, human_duration

__all__ = ["integration_document", "write_integration_document"]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("hooklab.studies", "templates"),
    autoescape=False,  # Markdown, not HTML: the report renders it and escapes there.
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def integration_document(
    engagement: Engagement,
    recommendations: Sequence[Recommendation],
    *,
    sample_type: str,
    sample: Mapping[str, Any],
    engagement_sha256: str,
    receiver_url: str = "https://hooks.example.com",
    generated: datetime | None = None,
) -> str:
    """The integration document as Markdown; ``sample`` is redacted here."""
    by_workflow = {rec.workflow: rec for rec in recommendations}
    wanted = {rec.source for rec in recommendations if rec.method != "pull"}
    endpoints = [app for app in engagement.apps if app.id in wanted and app.webhooks]
    return _TEMPLATES.get_template("integration.md.j2").render(
        client=engagement.client,
        version=__version__,
        generated=(generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        engagement_sha256=engagement_sha256,
        flows=[(wf, by_workflow[wf.id]) for wf in engagement.workflows],
        apps={app.id: app for app in engagement.apps},
        endpoints=endpoints,
        secrets=engagement.secrets,
        workflows=engagement.workflows,
        receiver_url=receiver_url.rstrip("/"),
        sample_type=sample_type,
        sample_json=json.dumps(redact(dict(sample)), indent=2, ensure_ascii=False),
        human=human_duration,
    )


def write_integration_document(text: str, output_dir: str | Path) -> Path:
    """Write the document to ``<output_dir>/docs/integration.md``; return the path."""
    path = Path(output_dir) / "docs" / "integration.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
