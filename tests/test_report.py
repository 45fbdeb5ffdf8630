"""The audit runner and report assembly, on small chapters written by each test.

These run real papermill executions on the registered kernel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hooklab.errors import ChapterError, ConfigError, NotebookRunError
from hooklab.report import html as report_html
from hooklab.report import load_results, run_audit, save_results
from hooklab.report.runner import (
    check_parameters_cell,
    discover_chapters,
    execute_chapter,
    scrub_secrets,
)

PARAMETERS = 'engagement_path = ""\noutput_dir = ""\nseed = 0\nlab_size = 0'


def _chapter(folder: Path, name: str, *cells: str, parameters: str | None = PARAMETERS):
    """Write notebook ``name`` with a title, a parameters cell and code ``cells``."""
    book = new_notebook()
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    book.cells.append(new_markdown_cell(f"# Chapter {name}\n\n## Section of {name}"))
    if parameters is not None:
        params = new_code_cell(parameters)
        params.metadata["tags"] = ["parameters"]
        book.cells.append(params)
    book.cells.extend(new_code_cell(source) for source in cells)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(book, path)
    return path


def _saving(key: str, headline: str) -> str:
    return (
        "from hooklab.report import save_results\n"
        f"save_results(output_dir, {key!r}, {{'headline': [{headline!r}], "
        "'seed': seed})"
    )


def test_discover_chapters_takes_numbered_notebooks_in_order(tmp_path):
    for name in ("02_b", "01_a", "notes", "10_c"):
        _chapter(tmp_path, name)

    assert [p.stem for p in discover_chapters(tmp_path)] == ["01_a", "02_b", "10_c"]


def test_folder_without_chapters_is_refused(tmp_path):
    with pytest.raises(NotebookRunError, match=r"holds no chapters \(files named NN_"):
        discover_chapters(tmp_path)


def test_notebook_without_parameters_cell_is_refused_before_anything_runs(tmp_path):
    chapters = tmp_path / "chapters"
    _chapter(chapters, "01_fine", _saving("fine", "ran"))
    _chapter(chapters, "02_untagged", "x = 1", parameters="seed = 3")
    book = nbformat.read(chapters / "02_untagged.ipynb", as_version=4)
    book.cells[1].metadata["tags"] = []
    nbformat.write(book, chapters / "02_untagged.ipynb")

    with pytest.raises(NotebookRunError, match=r"02_untagged.ipynb has no cell tagged"):
        run_audit(reports_dir=tmp_path / "reports", chapters_dir=chapters)

    assert not (tmp_path / "reports").exists()


def test_parameters_keep_their_types(tmp_path):
    """Lists and mappings reach the notebook as such, not as strings."""
    probe = (
        "import json, pathlib\n"
        "pathlib.Path(output_dir, 'types.json').write_text(json.dumps({\n"
        "    'seed': type(seed).__name__, 'intervals': type(intervals).__name__,\n"
        "    'mix': type(mix).__name__, 'values': [intervals, mix]}))"
    )
    notebook = _chapter(
        tmp_path / "chapters",
        "01_types",
        probe,
        parameters='output_dir = ""\nseed = 0\nintervals = []\nmix = {}',
    )
    parameters = {
        "output_dir": str(tmp_path),
        "seed": 11,
        "intervals": [60, 300.5],
        "mix": {"order.created": 60, "nested": {"a": [1, 2]}},
    }

    execute_chapter(notebook, tmp_path, parameters)

    seen = json.loads((tmp_path / "types.json").read_text())
    assert seen["seed"] == "int"
    assert (seen["intervals"], seen["mix"]) == ("list", "dict")
    assert seen["values"] == [
        [60, 300.5],
        {"order.created": 60, "nested": {"a": [1, 2]}},
    ]


def test_failing_chapter_stops_the_run_and_keeps_partial_output(tmp_path):
    chapters = tmp_path / "chapters"
    _chapter(chapters, "01_fine", _saving("fine", "first chapter ran"))
    _chapter(chapters, "02_broken", "x = 1", "raise ValueError('the data is missing')")
    _chapter(chapters, "03_never", _saving("never", "must not run"))
    seen = []

    with pytest.raises(NotebookRunError) as caught:
        run_audit(
            reports_dir=tmp_path / "reports",
            chapters_dir=chapters,
            progress=lambda i, n, name, state, s: seen.append((i, n, name, state)),
        )

    message = str(caught.value)
    # Execution count 4 in the kept notebook: parameters, injected parameters, x = 1.
    assert "Chapter 02_broken failed in cell 4" in message
    assert "ValueError: the data is missing" in message
    folder = next((tmp_path / "reports" / "acme-shop").iterdir())
    assert f"kept for inspection: {folder / '02_broken.ipynb'}" in message
    assert (folder / "02_broken.ipynb").exists()
    assert not (folder / "03_never.ipynb").exists()
    assert seen == [
        (1, 3, "01_fine", "start"),
        (1, 3, "01_fine", "done"),
        (2, 3, "02_broken", "start"),
        (2, 3, "02_broken", "failed"),
    ]


def test_audit_of_small_chapters_writes_an_assembled_report(tmp_path):
    chapters = tmp_path / "chapters"
    _chapter(chapters, "01_alpha", _saving("alpha", "Alpha found 3 things."))
    _chapter(chapters, "02_beta", _saving("beta", "Beta measured 42 ms."), "print('x')")

    result = run_audit(reports_dir=tmp_path / "reports", chapters_dir=chapters, seed=5)

    assert result.folder.parent == tmp_path / "reports" / "acme-shop"
    assert [run.name for run in result.chapters] == ["01_alpha", "02_beta"]
    results = load_results(result.folder)
    assert results["alpha"]["seed"] == 5  # the audit's seed reached the chapter
    assert results["inputs"]["seed"] == 5
    assert len(results["inputs"]["engagement_sha256"]) == 64

    page = result.report.read_text(encoding="utf-8")
    assert "Alpha found 3 things." in page and "Beta measured 42 ms." in page
    assert 'href="#01_alpha-2"' in page  # the table of contents links sections
    assert 'id="01_alpha-2">Section of 01_alpha</h2>' in page
    assert "save_results" not in page  # code is hidden
    assert results["inputs"]["engagement_sha256"] in page


def test_save_results_writes_strict_json_from_numpy_and_pandas(tmp_path):
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"p50": [np.float64(1.5)]}, index=pd.Index(["push"], name="m"))
    save_results(tmp_path, "lab", {"x": np.int64(3), "inf": float("inf"), "t": frame})

    assert load_results(tmp_path)["lab"] == {
        "x": 3,
        "inf": None,
        "t": [{"m": "push", "p50": 1.5}],
    }


def test_scrub_secrets_replaces_values_and_names_the_variable(tmp_path):
    (tmp_path / "a.html").write_text("token=whsec_abcdefgh12345 end")
    (tmp_path / "b.json").write_text("clean")

    changed = scrub_secrets(tmp_path, {"SHOP_SECRET": "whsec_abcdefgh12345"})

    assert changed == [tmp_path / "a.html"]
    assert (tmp_path / "a.html").read_text() == "token=[secret $SHOP_SECRET] end"


def test_check_parameters_cell_accepts_a_tagged_cell(tmp_path):
    check_parameters_cell(_chapter(tmp_path, "01_ok"))


def test_report_drops_scripts_and_handlers_from_chapter_outputs(tmp_path):
    """nbconvert copies Markdown and HTML outputs raw; the report must not run them."""
    chapters = tmp_path / "chapters"
    shown = (
        "from IPython.display import HTML, Markdown, display\n"
        "display(Markdown(\"Shop <script>document.title='INJECTED'</script> ok\"))\n"
        'display(HTML(\'<img src=x onerror="alert(1)"><b onclick="f()">kept</b>\'))'
    )
    _chapter(chapters, "01_hostile", shown)

    result = run_audit(reports_dir=tmp_path / "reports", chapters_dir=chapters)

    page = result.report.read_text(encoding="utf-8")
    assert "Shop" in page and "<b>kept</b>" in page
    assert "<script" not in page.lower()
    assert "INJECTED" not in page
    assert "onerror" not in page and "onclick" not in page


def test_report_policy_stops_what_the_script_filter_misses(
    tmp_path, monkeypatch, browser
):
    """With the filter switched off, Chromium still runs nothing in the report."""
    chapters = tmp_path / "chapters"
    hostile = (
        "<p id=shown>Shop ok</p>"
        "<script>document.title='RAN'</script>"
        "<img src=x onerror=\"document.title='RAN'\">"
        "<iframe srcdoc=\"<script>parent.document.title='RAN'</script>\"></iframe>"
        "<a id=link href=\"javascript:document.title='RAN'\">a</a>"
    )
    shown = f"from IPython.display import HTML, display\ndisplay(HTML({hostile!r}))"
    _chapter(chapters, "01_hostile", shown)
    monkeypatch.setattr(report_html, "neutralise_scripts", lambda body: body)

    result = run_audit(reports_dir=tmp_path / "reports", chapters_dir=chapters)

    page = result.report.read_text(encoding="utf-8")
    assert "<script>document.title='RAN'</script>" in page  # the filter was off
    browser.get(result.report.as_uri())
    title = "Acme Shop: integration audit"
    assert browser.title == title  # no script, handler or frame ran
    browser.find_element("id", "link").click()
    assert browser.title == title  # nor the javascript: link
    assert browser.find_element("id", "shown").text == "Shop ok"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("a<script>x()</script>b", "ab"),
        ("a<SCRIPT type='m'>\nx()\n</script >b", "ab"),
        ("a<scr<script></script>ipt>x()</script>b", "ax()b"),
        ("a<script src=x>", "a"),
        ('<img alt="a > b" onerror="f()" src="x">', '<img alt="a > b" src="x">'),
        ("<img/onerror=f() src=x>", "<img src=x>"),
        ("<b ONCLICK='f()' class=k>", "<b class=k>"),
        ('<a href=" java&#x73;cript:f()">x</a>', '<a href="#blocked">x</a>'),
        (
            '<a href="https://x.org/?on=1">on=1</a>',
            '<a href="https://x.org/?on=1">on=1</a>',
        ),
        ("if onload=1 in prose", "if onload=1 in prose"),
        (
            '<img src="data:image/png;base64,AAAA">',
            '<img src="data:image/png;base64,AAAA">',
        ),
    ],
    ids=[
        "block",
        "upper-case-multiline",
        "nested",
        "unclosed",
        "quoted-gt",
        "slash-separator",
        "upper-case-handler",
        "javascript-url-with-entity",
        "ordinary-link",
        "prose",
        "png-data-uri",
    ],
)
def test_neutralise_scripts_keeps_markup_and_drops_what_runs(html, expected):
    assert report_html.neutralise_scripts(html) == expected


def test_reports_folder_that_cannot_be_made_is_a_config_error(tmp_path):
    (tmp_path / "afile").write_text("")
    chapters = tmp_path / "chapters"
    _chapter(chapters, "01_fine", "x = 1")

    with pytest.raises(ConfigError, match=r"afile/sub/acme-shop/.* Not a directory"):
        run_audit(reports_dir=tmp_path / "afile" / "sub", chapters_dir=chapters)


def test_chapter_errors_are_config_errors_and_notebook_run_errors(tmp_path):
    with pytest.raises(ChapterError) as caught:
        discover_chapters(tmp_path)

    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, NotebookRunError)


_PIXEL = (  # a 1x1 transparent PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8"
    "AAAAASUVORK5CYII="
)


def _figure_cell():
    from nbformat.v4 import new_output

    cell = new_code_cell("plot()")
    cell.outputs = [new_output("display_data", data={"image/png": _PIXEL})]
    return cell


def test_figures_are_described_by_the_section_they_sit_in(tmp_path):
    notebook = new_notebook(
        cells=[
            _figure_cell(),
            new_markdown_cell('# Push & "pull"'),
            _figure_cell(),
            new_markdown_cell("## Latency by method"),
            _figure_cell(),
        ]
    )
    path = tmp_path / "03_lab.ipynb"
    nbformat.write(notebook, path)

    body = report_html.render_chapter(path).body

    alts = re.findall(r'<img\b[^>]*\balt="([^"]*)"', body)
    assert alts == [
        "Figure: this chapter",
        "Figure: Push &amp; &quot;pull&quot;",
        "Figure: Latency by method",
    ]
    assert "No description has been provided" not in body


@pytest.mark.parametrize(
    ("seed", "lab_size", "message"),
    [
        ("abc", 100, "seed must be a whole number of 0 or more, got 'abc'"),
        (-1, 100, "seed must be a whole number"),
        (7, 5, "lab_size must be between 10 and 100,000 webhooks, got 5"),
        (7, "300", "lab_size must be a whole number, got '300'"),
    ],
)
def test_chapter_parameters_the_audit_would_refuse_are_refused(
    seed: object, lab_size: object, message: str
) -> None:
    """papermill passes any -p value; a chapter says what is wrong before running."""
    from hooklab.report import check_parameters

    with pytest.raises(ConfigError, match=re.escape(message)):
        check_parameters(seed=seed, lab_size=lab_size)


def test_audit_lab_size_range_is_the_chapters() -> None:
    from hooklab.cli import main
    from hooklab.report import LAB_SIZES

    [option] = [p for p in main.commands["audit"].params if p.name == "lab_size"]
    assert (option.type.min, option.type.max) == LAB_SIZES
