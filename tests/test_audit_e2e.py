"""The whole audit, end to end, through the installed command on the example.

One real run (module-scoped, about half a minute): papermill executes every chapter,
the lab chapter delivers real signed webhooks on loopback, and the report is checked
as a client would receive it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHAPTERS = (
    "01_scope",
    "02_security",
    "03_lab",
    "04_scale",
    "05_roi",
    "06_checklist",
    "07_docs",
)
SECRETS = {
    # The shop is on Shopify: its secret is a client secret, not a whsec_ one, and
    # the lab (which signs with Standard Webhooks) must still run beside it.
    "ACME_SHOP_WEBHOOK_SECRET": "shpss_" + secrets.token_hex(16),
    "ACME_BILLING_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
    "ACME_SHOP_API_TOKEN": "shpat_" + secrets.token_hex(16),
}


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """Run `hooklab audit` once on the example, with every named secret set."""
    reports = tmp_path_factory.mktemp("reports")
    hooklab = Path(sys.executable).with_name("hooklab")
    env = {**os.environ, **SECRETS}
    result = subprocess.run(
        [
            str(hooklab),
            "audit",
            "--reports",
            str(reports),
            "--lab-size",
            "80",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result, Path(result.stdout.strip())


def test_audit_prints_the_report_folder_and_shows_progress(audit):
    result, folder = audit
    assert folder.is_dir()
    assert folder.parent.name == "acme-shop"
    assert re.fullmatch(r"\d{8}T\d{6}Z", folder.name)
    for index, chapter in enumerate(CHAPTERS, start=1):
        assert re.search(
            rf"^\[{index}/{len(CHAPTERS)}\] {chapter} done in \d+\.\d s$",
            result.stderr,
            re.MULTILINE,
        )
    assert "WARNING" not in result.stderr  # no library noise between the lines


def test_every_chapter_leaves_a_notebook_and_results(audit):
    _, folder = audit
    for chapter in CHAPTERS:
        assert (folder / f"{chapter}.ipynb").is_file()
        results = json.loads((folder / f"{chapter[3:]}.results.json").read_text())
        assert results["headline"], f"{chapter} has no headline"
    assert (folder / "docs" / "integration.md").is_file()


def test_report_has_every_chapter_figures_and_no_errors(audit):
    _, folder = audit
    page = (folder / "report.html").read_text(encoding="utf-8")

    titles = re.findall(r'<section class="chapter" id="(\d\d_\w+)">', page)
    assert titles == list(CHAPTERS)
    assert page.count('src="data:image/png;base64,') >= 3
    assert "Traceback" not in page
    assert "output_error" not in page
    assert ">NaN<" not in page  # tables show gaps as dashes
    cut = re.findall(r"<td[^>]*>([^<]*\.\.\.)</td>", page)
    assert cut == []  # no cell cut short by pandas' 50-character display limit
    assert "Run headlessly" not in page  # a notebook reader's hint, not a client's
    assert "Running on" not in page  # nor is the line that says what a chapter read
    assert 'href="#03_lab-' in page  # table of contents reaches into chapters


def test_report_is_self_contained(audit):
    """Nothing is fetched from another host when the file is opened."""
    _, folder = audit
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(
        r"""<(script|img|link|iframe)[^>]+(src|href)=["']?(https?:)?//""", page
    )


def test_report_states_its_inputs(audit):
    _, folder = audit
    page = (folder / "report.html").read_text(encoding="utf-8")
    inputs = json.loads((folder / "inputs.results.json").read_text())

    assert inputs["seed"] == 3 and inputs["lab_size"] == 80
    for key in ("engagement_sha256", "hooklab_version", "started_utc"):
        assert str(inputs[key]) in page


def test_lab_numbers_are_measured_in_this_run(audit):
    """The lab's figures come from this run's traffic and reach the report."""
    _, folder = audit
    lab = json.loads((folder / "lab.results.json").read_text())
    push = next(row for row in lab["summary"] if row["method"] == "push")

    assert 0 < push["p50_s"] < 1
    assert push["missed"] == 0
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert lab["headline"][0] in page


def test_no_secret_value_appears_in_any_output(audit):
    _, folder = audit
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert len(files) >= 12
    for path in files:
        data = path.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in data, f"{name} leaked into {path}"
            assert value.split("_", 1)[1].encode() not in data, f"{name} in {path}"


def test_report_in_a_browser_shows_every_chapter_and_its_figures(audit, browser):
    """Opened in Chromium: every chapter, every figure decoded, contents that link."""
    _, folder = audit
    browser.get((folder / "report.html").as_uri())

    chapters = browser.execute_script(
        "return [...document.querySelectorAll('section.chapter h1')]"
        ".map(h => h.textContent)"
    )
    assert len(chapters) == len(CHAPTERS)
    assert chapters[1].startswith("Security: who is calling")
    assert chapters[2].startswith("Lab: push against polling")
    widths = browser.execute_script(
        "return [...document.images].map(img => img.complete ? img.naturalWidth : 0)"
    )
    assert len(widths) >= 3 and min(widths) > 100
    too_wide = browser.execute_script(  # a table that scrolls sideways at 1280 px
        "const main = document.querySelector('main').clientWidth;"
        "return [...document.querySelectorAll('main table')]"
        ".filter(t => t.scrollWidth > main)"
        ".map(t => t.querySelector('tr').textContent.trim().slice(0, 80))"
    )
    assert too_wide == []
    broken_links = browser.execute_script(
        "return [...document.querySelectorAll('nav a')]"
        ".filter(a => !document.getElementById(a.hash.slice(1))).length"
    )
    assert broken_links == 0
    lab = json.loads((folder / "lab.results.json").read_text())
    assert lab["headline"][0] in browser.find_element("tag name", "body").text
    browser.save_screenshot(str(folder / "screenshot.png"))
