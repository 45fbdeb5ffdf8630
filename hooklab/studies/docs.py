"""Generated documentation: the integration document handed over with the report."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from hooklab import __version__
from hooklab.redact import redact
from hooklab.spec import Engagement, engagement_hash, example_path
from hooklab.studies.payloads import make_payload
from hooklab.studies.scope import Recommendation, human_duration, recommend

__all__ = [
    "demote_headings",
    "document_for",
    "integration_document",
    "write_integration_document",
]

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


def document_for(
    engagement: Engagement, engagement_path: str | Path | None, *, seed: int
) -> str:
    """The integration document for an engagement file, with a seeded sample payload.

    The sample is the first workflow that receives webhooks, as hooklab's lab
    generates it (fictitious people, redacted all the same).
    """
    recommendations = recommend(engagement)
    pushed = [rec for rec in recommendations if rec.method != "pull"]
    trigger = (pushed or recommendations)[0].trigger
    sample = make_payload(trigger, random.Random(seed), event_id="evt_sample")
    return integration_document(
        engagement,
        recommendations,
        sample_type=trigger,
        sample=sample,
        engagement_sha256=engagement_hash(engagement_path or example_path()),
    )


def write_integration_document(text: str, output_dir: str | Path) -> Path:
    """Write the document to ``<output_dir>/docs/integration.md``; return the path."""
    path = Path(output_dir) / "docs" / "integration.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def demote_headings(markdown: str) -> str:
    """The document one heading level down, to sit inside a report chapter."""
    return re.sub(r"^(#{1,5}) ", r"#\1 ", markdown, flags=re.MULTILINE)
