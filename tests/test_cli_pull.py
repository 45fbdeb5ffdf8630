"""``hooklab backfill`` and ``hooklab lab hybrid``: output, exit codes and effects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hooklab.cli import main
from hooklab.ledger import SqliteLedger
from hooklab.mockprovider import MockProvider, OAuthConfig
from hooklab.servers import serve_in_thread

CLIENT_SECRET = "cli-pull-client-secret-0123456789"


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def api() -> Iterator[tuple[MockProvider, str]]:
    """A provider with OAuth and three orders (three events), on loopback."""
    provider = MockProvider(oauth=OAuthConfig("cli", CLIENT_SECRET))
    for number in range(3):
        provider.create_order({"total": number})
    with serve_in_thread(provider.app) as server:
        yield provider, server.url


def _oauth_args(url: str, ledger: Path) -> list[str]:
    return [
        "backfill",
        "--ledger",
        str(ledger),
        "--api",
        url,
        "--source",
        "shop",
        "--since",
        "2020-01-01T00:00",
        "--oauth-token-url",
        f"{url}/oauth/token",
        "--client-id",
        "cli",
        "--client-secret-env",
        "SHOP_CLIENT_SECRET",
    ]


def test_backfill_records_missing_events_and_processes_them(
    api: tuple[MockProvider, str], tmp_path: Path
) -> None:
    provider, url = api
    ledger = tmp_path / "ledger.db"
    args = [*_oauth_args(url, ledger), "--action", "record", "--json"]

    result = _run(*args, env={"SHOP_CLIENT_SECRET": CLIENT_SECRET})

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["listed"], report["recovered"], report["processed"]) == (3, 3, 3)
    assert report["calls"] == 2  # the token, then one page
    with SqliteLedger(ledger) as opened:
        assert opened.stats()["done"] == 3
    assert CLIENT_SECRET not in result.output


def test_backfill_text_report_second_run_recovers_nothing(
    api: tuple[MockProvider, str], tmp_path: Path
) -> None:
    _, url = api
    env = {"SHOP_CLIENT_SECRET": CLIENT_SECRET}
    _run(*_oauth_args(url, tmp_path / "l.db"), env=env)

    result = _run(*_oauth_args(url, tmp_path / "l.db"), env=env)

    assert result.exit_code == 0, result.output
    assert "3 already in the ledger, 0 recovered" in result.output


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        pytest.param([], {}, "SHOP_CLIENT_SECRET, which is unset", id="unset-secret"),
        pytest.param(
            ["--bearer-env", "TOKEN"],
            {"SHOP_CLIENT_SECRET": "x"},
            "Choose one kind of credentials",
            id="two-kinds",
        ),
        pytest.param(
            ["--since", "last tuesday"],
            {"SHOP_CLIENT_SECRET": "x"},
            "neither ISO-8601",
            id="bad-since",
        ),
    ],
)
def test_backfill_user_mistake_exits_2_with_message(
    extra: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    args = _oauth_args("http://127.0.0.1:9", tmp_path / "l.db")

    result = _run(*args, *extra, env={"SHOP_CLIENT_SECRET": "", **env})

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (("--api", "ftp://127.0.0.1/x"), "Invalid value for '--api'"),
        (("--api", "http://[::1"), "Invalid value for '--api'"),
        (("--source", ""), "Invalid value for '--source': must not be empty"),
        (("--since", "nan"), "--since 'nan' is not a time"),
    ],
    ids=["ftp", "broken-host", "empty-source", "nan-since"],
)
def test_backfill_unusable_option_exits_2_before_any_request(
    replace: tuple[str, str], message: str, tmp_path: Path
) -> None:
    args = _oauth_args("http://127.0.0.1:9", tmp_path / "l.db")
    args[args.index(replace[0]) + 1] = replace[1]

    result = _run(*args, env={"SHOP_CLIENT_SECRET": "x"})

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "l.db").exists()


def test_backfill_wrong_client_secret_exits_1_naming_the_endpoint(
    api: tuple[MockProvider, str], tmp_path: Path
) -> None:
    _, url = api

    result = _run(
        *_oauth_args(url, tmp_path / "l.db"),
        env={"SHOP_CLIENT_SECRET": "not-the-secret"},
    )

    assert result.exit_code == 1
    assert "/oauth/token answered HTTP 401 (invalid_client)" in result.output
    assert "not-the-secret" not in result.output


def test_lab_hybrid_json_summary() -> None:
    options = ["--events", "120", "--drop", "0.25", "--rate-limit", "50", "--json"]

    result = _run("lab", "hybrid", *options)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["events_emitted"] == 120
    assert summary["recovered_by_backfill"] == summary["webhooks_lost"] > 0
    assert summary["missing"] == summary["processed_more_than_once"] == 0


def test_lab_hybrid_text_summary_names_every_figure() -> None:
    result = _run("lab", "hybrid", "--events", "20", "--drop", "0.5")

    assert result.exit_code == 0, result.output
    for label in (
        "events emitted",
        "delivered by webhook",
        "recovered by backfill",
        "missing",
        "processed more than once",
        "API calls made",
        "API calls refused with 429",
    ):
        assert label in result.output


@pytest.mark.parametrize("command", [["backfill"], ["lab", "hybrid"], ["lab"]])
def test_help_teaches_with_examples(command: list[str]) -> None:
    result = _run(*command, "--help")

    assert result.exit_code == 0
    assert "Examples:" in result.output
