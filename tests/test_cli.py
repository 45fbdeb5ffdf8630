"""The hooklab command: help, exit codes and messages for user mistakes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hooklab import __version__
from hooklab.cli import main
from hooklab.spec import example_path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed command for real, as a user would."""
    hooklab = Path(sys.executable).with_name("hooklab")
    return subprocess.run(
        [str(hooklab), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_names_the_first_command_to_run():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "hooklab audit" in result.output
    assert "audit" in result.output and "check" in result.output


def test_audit_help_gives_examples_and_defaults():
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    assert "hooklab audit clients/bakery.yaml" in result.output
    assert "[default: 300;" in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.output.strip() == f"hooklab, version {__version__}"


def test_check_accepts_the_example():
    result = CliRunner().invoke(main, ["check", str(example_path())])
    assert result.exit_code == 0
    assert "valid. Acme Shop: 8 apps, 5 workflows, 3 secrets named." in result.output


def test_check_of_an_invalid_file_exits_2_with_line_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (
        example_path()
        .read_text()
        .replace("latency_target_s: 60", "latency_target_s: -5")
    )
    bad.write_text(text)

    result = _run("check", str(bad))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        "workflows[0].latency_target_s: Input should be greater than 0" in result.stderr
    )
    assert result.stderr.startswith(f"error: {bad} is not a valid engagement file")


def test_audit_of_a_missing_file_exits_2_without_traceback(tmp_path):
    result = _run("audit", str(tmp_path / "nope.yaml"), "--reports", str(tmp_path))

    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'nope.yaml'}: no such engagement file."
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["audit", "--lab-size", "3"], "Invalid value for '--lab-size'"),
        (["audit", "--seed", "abc"], "Invalid value for '--seed'"),
        (["audit", "a.yaml", "b.yaml"], "Got unexpected extra argument"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_mistakes_exit_2_with_a_hint(args, expected):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert expected in result.output


def test_audit_with_a_failing_chapter_exits_1_naming_it(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    chapters = tmp_path / "chapters"
    chapters.mkdir()
    params = new_code_cell('output_dir = ""')
    params.metadata["tags"] = ["parameters"]
    book = new_notebook(cells=[params, new_code_cell("1 / 0")])
    # No language in the kernelspec, as some editors write it: still runs.
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(book, chapters / "01_divide.ipynb")

    result = _run(
        "audit", "--chapters", str(chapters), "--reports", str(tmp_path / "r")
    )

    assert result.returncode == 1
    assert "[1/1] 01_divide running\n" in result.stderr
    assert "[1/1] 01_divide failed in " in result.stderr
    assert "error: Chapter 01_divide failed in cell 3" in result.stderr
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_prints_every_method_as_json():
    args = [
        "simulate",
        "--events-per-day",
        "200",
        "--days",
        "2",
        "--interval",
        "5",
        "--json",
    ]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads(result.output)}
    assert list(rows) == ["push", "poll 5 min", "hybrid (60 min)"]
    assert rows["push"]["empty_poll_share"] is None  # NaN becomes null
    assert rows["poll 5 min"]["p50_s"] == pytest.approx(150, rel=0.15)


def test_simulate_table_and_bad_volume():
    table = CliRunner().invoke(main, ["simulate", "--events-per-day", "50"])
    assert table.exit_code == 0
    assert "poll 15 min" in table.output and "p99_s" in table.output

    bad = CliRunner().invoke(main, ["simulate", "--events-per-day", "0"])
    assert bad.exit_code == 2
    assert "Invalid value for '--events-per-day'" in bad.output


def test_check_notes_what_still_holds_the_blank_templates_text():
    template = Path(__file__).resolve().parents[1] / "templates" / "engagement.yaml"

    result = CliRunner().invoke(main, ["check", str(template)])

    assert result.exit_code == 0  # valid, only not filled in
    assert "valid. Client name: 1 app, 1 workflow, 1 secret named." in result.output
    assert "note: client.name is still the template's 'Client name'" in result.output
    assert "workflows[0].actions[0].does is still the template's" in result.output
    assert "client.slug is still the template's 'client-name'" in result.output
    assert "apps[0].api_base_url is still the template's" in result.output


def test_lab_push_measures_every_webhook():
    result = CliRunner().invoke(main, ["lab", "push", "--events", "40", "--json"])

    assert result.exit_code == 0, result.output
    (push,) = json.loads(result.stdout)  # JSON alone on stdout, progress on stderr
    assert push["method"] == "push"
    assert push["missed"] == 0 and push["calls"] == 0  # API calls: none for push
    assert 0 < push["p50_s"] < 1
    assert "Running the lab on 127.0.0.1: 40 events, push only" in result.stderr


def test_long_lab_run_says_it_is_still_running(monkeypatch):
    from hooklab.cli import studies

    monkeypatch.setattr(studies, "HEARTBEAT_S", 0.05)

    @click.command()
    def slow() -> None:
        click.echo(studies._with_heartbeat(lambda: time.sleep(0.3) or "done"))

    result = CliRunner().invoke(slow)

    assert result.stdout == "done\n"
    assert result.stderr.count("still running") >= 3


def test_lab_poll_reports_each_interval_in_real_world_seconds():
    args = ["lab", "poll", "--events", "30", "--interval", "5", "--scale", "1200"]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert "30 signed webhooks and 1 poller ran" in result.output
    assert "poll 5 min" in result.output


def test_check_and_audit_refuse_an_engagement_with_no_push_side(tmp_path):
    """Valid, but the chapters cannot compare push with polling: exit 2 up front."""
    text = example_path().read_text().replace("webhooks: true", "webhooks: false")
    path = tmp_path / "all-pull.yaml"
    path.write_text(text)

    for args in (
        ["check", str(path)],
        ["audit", str(path), "--reports", str(tmp_path)],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "is valid but cannot be audited" in result.output
    assert not (tmp_path / "acme-shop").exists()


def test_audit_with_reports_under_a_file_exits_2_naming_the_folder(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    reports = tmp_path / "afile" / "sub"

    result = CliRunner().invoke(main, ["audit", "--reports", str(reports)])

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: The reports folder {reports / 'acme-shop'}/" in result.output
    assert "Not a directory. Choose a writable folder with --reports." in result.output
    assert "Traceback" not in result.output


def test_audit_of_an_empty_chapters_folder_exits_2(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()

    result = CliRunner().invoke(
        main, ["audit", "--chapters", str(chapters), "--reports", str(tmp_path)]
    )

    assert result.exit_code == 2
    assert f"error: {chapters} holds no chapters (files named NN_*.ipynb)." in (
        result.output
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "cannot be read as a Jupyter notebook"),
        (
            '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
            "has no cell tagged 'parameters'",
        ),
    ],
    ids=["invalid-json", "no-parameters-cell"],
)
def test_audit_of_an_unusable_chapter_exits_2(tmp_path, text, expected):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "01_bad.ipynb").write_text(text)

    result = CliRunner().invoke(
        main, ["audit", "--chapters", str(chapters), "--reports", str(tmp_path)]
    )

    assert result.exit_code == 2
    assert expected in result.output
    assert not list(tmp_path.glob("acme-shop"))


def test_log_lines_carry_their_fields() -> None:
    from hooklab.cli._app import FieldsFormatter

    formatter = FieldsFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.makeLogRecord(
        {
            "name": "hooklab.receiver",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "webhook.rejected",
            "source": "shop",
            "reason": "The webhook-signature header is missing.",
        }
    )
    plain = logging.makeLogRecord({"msg": "server.started", "levelname": "INFO"})

    assert formatter.format(record) == (
        "WARNING hooklab.receiver webhook.rejected source=shop "
        "reason='The webhook-signature header is missing.'"
    )
    assert formatter.format(plain).endswith("server.started")


def test_log_fields_cannot_carry_terminal_codes_or_new_lines() -> None:
    from hooklab.cli._app import FieldsFormatter

    formatter = FieldsFormatter("%(message)s")
    record = logging.makeLogRecord(
        {"msg": "webhook.duplicate", "event_id": "evt\x1b[2J\nFAKE line"}
    )

    line = formatter.format(record)

    assert "\x1b" not in line and "\n" not in line
    assert line == "webhook.duplicate event_id='evt\\x1b[2J\\nFAKE line'"


def test_check_and_audit_refuse_a_misspelt_signature_scheme(tmp_path):
    """serve would refuse it; check says so first, naming the app and the schemes."""
    text = (
        example_path()
        .read_text()
        .replace("signature_scheme: stripe", "signature_scheme: strype")
    )
    path = tmp_path / "typo.yaml"
    path.write_text(text)

    for args in (
        ["check", str(path)],
        ["audit", str(path), "--reports", str(tmp_path)],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "apps[1].signature_scheme 'strype' is not a scheme" in result.output
        assert "stripe" in result.output.split("the schemes are", 1)[1]
    assert not (tmp_path / "acme-shop").exists()
