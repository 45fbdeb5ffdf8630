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
    "escape_markdown",
    "integration_document",
    "markdown_code",
    "write_integration_document",
]

#: What ``escape_markdown`` replaces, in one pass: HTML's special characters as
#: entities; the backslash, and the characters that would split a table cell, open a
#: code span or make a link, as Markdown backslash escapes.
_MARKDOWN_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\\": "\\\\",
    "|": "\\|",
    "`": "\\`",
    "[": "\\[",
    "]": "\\]",
}
_MARKDOWN_SPECIAL = re.compile("|".join(re.escape(c) for c in _MARKDOWN_ESCAPES))
_NOT_IN_CODE_SPAN = re.compile(r"[`|\r\n]")


def escape_markdown(value: object) -> str:
    """``value`` as literal text on one Markdown line, safe in a table cell.

    HTML special characters become entities, so a name such as ``<script>`` is shown
    and never run; ``|``, backticks and brackets are escaped so they cannot split a
    table cell, open a code span or make a link; line breaks become spaces so a
    value cannot end a table row or a heading.
    """
    text = " ".join(str(value).splitlines())
    return _MARKDOWN_SPECIAL.sub(lambda m: _MARKDOWN_ESCAPES[m.group()], text)


def markdown_code(value: object) -> str:
    """``value`` as an inline code span, or as escaped text when a span cannot hold it.

    A code span shows HTML as text, but a backtick would end it early and the
    report's Markdown renderer does not honour ``\\|`` inside one, so such values
    fall back to ``escape_markdown``.
    """
    text = str(value)
    if _NOT_IN_CODE_SPAN.search(text):
        return escape_markdown(text)
    return f"`{text}`"


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("hooklab.studies", "templates"),
    # Markdown, not HTML, so Jinja's HTML escaping does not fit: every value taken
    # from the engagement goes through the ``md`` or ``code`` filter instead, because
    # the report shows this Markdown as HTML without escaping it again.
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_TEMPLATES.filters["md"] = escape_markdown
_TEMPLATES.filters["code"] = markdown_code


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
        # Shown verbatim in a ```json fence. json.dumps escapes every control
        # character, so no value can start a new line, and with indent=2 each line
        # begins with spaces and then a quote, digit, bracket or brace: a ``` inside
        # a value can never stand at the start of a line, where it would close the
        # fence. Inside the fence the renderer shows HTML as text.
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
    sample = make_payload(
        trigger,
        random.Random(seed),
        event_id="evt_sample",
        currency=engagement.client.currency,
    )
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
