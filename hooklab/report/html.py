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

__all__ = ["Chapter", "build_report", "neutralise_scripts", "render_chapter"]

_HEADING = re.compile(r"<h([1-3])(?: [^>]*)?>(.*?)</h\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
# Each chapter's introduction tells a notebook reader how to run it headlessly;
# the report's reader has no use for that line.
_RUN_HINT = re.compile(r"<p>Run headlessly with every other chapter:.*?</p>", re.DOTALL)
_HIDDEN_TAGS = ("parameters", "injected-parameters", "remove-cell")
_SCRIPT_BLOCK = re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_SCRIPT_TAG = re.compile(r"</?script\b[^>]*>?", re.IGNORECASE)
# A start tag, reading quoted attribute values whole: they may hold a ">".
_START_TAG = re.compile(r"""<[a-zA-Z](?:"[^"]*"|'[^']*'|[^'">])*>""")
# One attribute: separator (HTML accepts "/" too), name, and optional value.
_ATTRIBUTE = re.compile(
    r"""([\s/]+)([^\s"'>/=]+)(?:(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+))?"""
)
_NO_DESCRIPTION = 'alt="No description has been provided for this image"'
_HEADING_OR_IMAGE = re.compile(
    r"<h[1-3][^>]*>(?P<heading>.*?)</h[1-3]>|<img\b[^>]*>", re.DOTALL
)
_SCRIPT_URL = re.compile(r"^(javascript|vbscript|data:text/html)", re.IGNORECASE)

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
    body = _RUN_HINT.sub("", neutralise_scripts(body))

    key = notebook.stem
    headings: list[tuple[int, str, str]] = []

    def anchor(match: re.Match[str]) -> str:
        level, inner = int(match.group(1)), match.group(2)
        text = html.unescape(_TAG.sub("", inner)).replace("¶", "").strip()
        slug = f"{key}-{len(headings) + 1}"
        headings.append((level, slug, text))
        return f'<h{level} id="{slug}">{html.escape(text)}</h{level}>'

    body = _describe_figures(_HEADING.sub(anchor, body))
    title = next((text for level, _, text in headings if level == 1), key)
    return Chapter(key=key, title=title, body=body, headings=headings)


def _describe_figures(body: str) -> str:
    """Give each figure the heading it sits under as its text alternative.

    nbconvert gives every image the same "No description has been provided"; a
    screen reader, or a mail client that blocks images, does better with the
    section the figure belongs to.
    """
    section = "this chapter"

    def visit(match: re.Match[str]) -> str:
        nonlocal section
        if match.group("heading") is not None:
            section = html.unescape(_TAG.sub("", match.group("heading"))).strip()
            return match.group()
        described = f'alt="{html.escape(f"Figure: {section}")}"'
        return match.group().replace(_NO_DESCRIPTION, described)

    return _HEADING_OR_IMAGE.sub(visit, body)


def neutralise_scripts(body: str) -> str:
    """``body`` without script elements, ``on*=`` event handlers or script URLs.

    nbconvert copies a chapter's text/html and text/markdown outputs into the page
    as they are. The chapters are our own code and escape what they take from the
    engagement; this is a second line of defence, so that nothing a client typed
    can run in the report, which has no scripts of its own. It filters HTML we
    generate; it is not a general sanitiser for pages from elsewhere. The third
    line is the page's Content-Security-Policy (report.html.j2), under which a
    browser runs no script and loads nothing the filter may have let through.
    """
    previous = None
    while body != previous:  # "<scr<script></script>ipt>" is a script once cleaned
        previous = body
        body = _SCRIPT_TAG.sub("", _SCRIPT_BLOCK.sub("", body))
    return _START_TAG.sub(lambda tag: _ATTRIBUTE.sub(_safe_attribute, tag[0]), body)


def _safe_attribute(match: re.Match[str]) -> str:
    separator, name, equals, value = match.groups()
    if name.lower().startswith("on"):
        return ""
    # Browsers decode entities and drop blanks and controls before reading a URL.
    url = re.sub(r"[\x00-\x20]", "", html.unescape((value or "").strip("\"'")))
    if _SCRIPT_URL.match(url):
        return f'{separator}{name}="#blocked"'
    return match.group()


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
