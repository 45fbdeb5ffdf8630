"""Assemble the executed chapters into one self-contained, client-ready HTML file.

Code is hidden, figures stay embedded as data URIs, and a table of contents links
every chapter heading. Nothing is loaded from another host, so the file can be
mailed or archived as it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import nbformat

from hooklab.report.results import load_results
from hooklab.spec import Engagement

__all__ = ["Chapter", "build_report", "render_chapter"]

_HEADING = re.compile(r"<h([1-3])(?: [^>]*)?>(.*?)</h\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_HIDDEN_TAGS = ("parameters", "injected-parameters", "remove-cell")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("hooklab.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Chapter:
    """One chapter as it appears in the report."""

    key: str
    title: str
    body: str
    headings: list[tuple[int, str, str]]  # (level, anchor, text)


def render_chapter(notebook: Path) -> Chapter:
    """The chapter's outputs and prose as HTML, code hidden, headings anchored."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [cell for cell in nb.cells if not _hidden(cell)]
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)

    key = notebook.stem
    headings: list[tuple[int, str, str]] = []

    def anchor(match: re.Match[str]) -> str:
        level, inner = int(match.group(1)), match.group(2)
        text = html.unescape(_TAG.sub("", inner)).replace("¶", "").strip()
        slug = f"{key}-{len(headings) + 1}"
        headings.append((level, slug, text))
        return f'<h{level} id="{slug}">{html.escape(text)}</h{level}>'

    body = _HEADING.sub(anchor, body)
    title = next((text for level, _, text in headings if level == 1), key)
    return Chapter(key=key, title=title, body=body, headings=headings)


def build_report(
    folder: Path,
    notebooks: Sequence[Path],
    inputs: Mapping[str, Any],
    engagement: Engagement,
) -> Path:
    """Write ``folder/report.html`` from the executed chapters and their results."""
    chapters = [render_chapter(notebook) for notebook in notebooks]
    results = load_results(folder)
    findings = [
        line
        for chapter in chapters
        for line in results.get(chapter.key.split("_", 1)[-1], {}).get("headline", [])
    ]
    page = _TEMPLATES.get_template("report.html.j2").render(
        client=engagement.client,
        chapters=chapters,
        findings=findings,
        inputs=inputs,
    )
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _hidden(cell: Any) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return any(tag in tags for tag in _HIDDEN_TAGS)
