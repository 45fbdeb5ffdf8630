"""``hooklab sign`` and ``hooklab verify``: round trips, refusals and exit codes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hooklab.cli import main

NOW = 1_750_000_000
SECRET = "whsec_" + base64.b64encode(b"cli-test-key-0123456789abcdefgh").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"cli-old-key-9876543210zyxwvuts").decode()
ENV = {"HOOKLAB_TEST_SECRET": SECRET, "HOOKLAB_OLD_SECRET": OLD_SECRET}
BODY = '{"type":"order.created","note":"Grüße"}'.encode()


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(BODY)
    return path


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], env=ENV)


def _signed(scheme: str, body_file: Path, *extra: str) -> list[str]:
    """Sign the body and return the printed header lines as --header options."""
    result = _invoke(
        "sign",
        "--scheme",
        scheme,
        "--secret-env",
        "HOOKLAB_TEST_SECRET",
        "--body-file",
        body_file,
        "--timestamp",
        str(NOW),
        *extra,
    )
    assert result.exit_code == 0, result.output
    options = []
    for line in result.stdout.splitlines():
        options += ["--header", line]
    return options


def _verify(scheme: str, body_file: Path, headers: list[str], *extra: str) -> Result:
    return _invoke(
        "verify",
        "--scheme",
        scheme,
        "--secret-env",
        "HOOKLAB_TEST_SECRET",
        "--body-file",
        body_file,
        *headers,
        *extra,
    )


def _assert_no_secret(result: Result) -> None:
    text = result.output + (result.stderr if result.stderr_bytes else "")
    for value in ENV.values():
        assert value not in text
        assert value.removeprefix("whsec_") not in text


@pytest.mark.parametrize(
    ("scheme", "extra"),
    [
        pytest.param("standard-webhooks", [], id="standard-webhooks"),
        pytest.param("stripe", [], id="stripe"),
        pytest.param("github", [], id="github"),
        pytest.param("square", ["--url", "https://hooks.example.com/sq"], id="square"),
    ],
)
def test_sign_then_verify_exits_0_and_names_the_scheme(
    scheme: str, extra: list[str], body_file: Path
) -> None:
    headers = _signed(scheme, body_file, *extra)

    result = _verify(scheme, body_file, headers, "--now", str(NOW + 5), *extra)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"valid: {scheme}, secret $HOOKLAB_TEST_SECRET")
    _assert_no_secret(result)


def test_verify_tampered_body_exits_1_with_reason(
    body_file: Path, tmp_path: Path
) -> None:
    headers = _signed("stripe", body_file)
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(BODY.replace(b"order", b"0rder"))

    result = _verify("stripe", tampered, headers, "--now", str(NOW))

    assert result.exit_code == 1
    assert result.stdout.startswith("refused (SignatureMismatch): No v1 signature")
    assert "Stripe-Signature" in result.stdout
    _assert_no_secret(result)


def test_verify_stale_timestamp_exits_1_saying_how_old(body_file: Path) -> None:
    headers = _signed("standard-webhooks", body_file)

    result = _verify("standard-webhooks", body_file, headers, "--now", str(NOW + 900))

    assert result.exit_code == 1
    assert "TimestampOutOfTolerance" in result.stdout
    assert "900 s old" in result.stdout


def test_verify_tolerance_option_widens_window(body_file: Path) -> None:
    headers = _signed("slack", body_file)

    result = _verify(
        "slack", body_file, headers, "--now", str(NOW + 900), "--tolerance", "1000"
    )

    assert result.exit_code == 0, result.output


def test_verify_rotation_reports_which_secret_matched(body_file: Path) -> None:
    headers = _signed("paddle", body_file)

    result = _invoke(
        "verify",
        "--scheme",
        "paddle",
        "--secret-env",
        "HOOKLAB_OLD_SECRET",
        "--secret-env",
        "HOOKLAB_TEST_SECRET",
        "--body-file",
        body_file,
        "--now",
        str(NOW),
        *headers,
    )

    assert result.exit_code == 0, result.output
    assert "secret $HOOKLAB_TEST_SECRET" in result.stdout


def test_verify_missing_header_exits_1_naming_it(body_file: Path) -> None:
    result = _verify("github", body_file, [])

    assert result.exit_code == 1
    assert "refused (MissingHeader): The X-Hub-Signature-256 header" in result.stdout


def test_sign_and_verify_plain_hmac_with_options(body_file: Path) -> None:
    options = ["--hmac-header", "Typeform-Signature", "--hmac-encoding", "base64"]
    options += ["--hmac-prefix", "sha256="]
    headers = _signed("hmac", body_file, *options)

    result = _verify("hmac", body_file, headers, *options)

    assert headers[1].startswith("Typeform-Signature: sha256=")
    assert result.exit_code == 0, result.output


def test_sign_twilio_json_prints_the_url_to_post_to(body_file: Path) -> None:
    url = "https://hooks.example.com/twilio?tenant=7"
    result = _invoke(
        "sign",
        "--scheme",
        "twilio-json",
        "--secret-env",
        "HOOKLAB_TEST_SECRET",
        "--body-file",
        body_file,
        "--url",
        url,
    )

    assert result.exit_code == 0
    assert result.stdout.startswith("X-Twilio-Signature: ")
    assert f"post to: {url}&bodySHA256=" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--secret-env", "HOOKLAB_UNSET_VARIABLE"],
            "The environment variable HOOKLAB_UNSET_VARIABLE is not set or empty.",
            id="unset-variable",
        ),
        pytest.param(
            ["--secret-env", "whsec_pastedTheSecretItself"],
            "never the secret itself (what was given is not shown)",
            id="secret-instead-of-name",
        ),
        pytest.param(
            ["--secret-env", "HOOKLAB_TEST_SECRET", "--header", "no colon here"],
            "--header expects 'Name: value'",
            id="header-without-colon",
        ),
        pytest.param(
            ["--secret-env", "HOOKLAB_TEST_SECRET", "--hmac-prefix", "sha256="],
            "--hmac-prefix only work with --scheme hmac, not github.",
            id="hmac-option-on-github",
        ),
        pytest.param(
            ["--secret-env", "HOOKLAB_TEST_SECRET", "--tolerance", "-1"],
            "'--tolerance': -1.0 is not in the range",
            id="negative-tolerance",
        ),
    ],
)
def test_verify_usage_mistake_exits_2_with_message(
    args: list[str], message: str, body_file: Path
) -> None:
    result = _invoke("verify", "--scheme", "github", "--body-file", body_file, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert "pastedTheSecretItself" not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_verify_url_scheme_without_url_exits_2(body_file: Path) -> None:
    headers = _signed("square", body_file, "--url", "https://hooks.example.com/sq")

    result = _verify("square", body_file, headers)

    assert result.exit_code == 2
    assert "needs that URL (--url on the command line" in result.stderr


def test_verify_unknown_scheme_exits_2_listing_choices(body_file: Path) -> None:
    result = _verify("acme-sig", body_file, [])

    assert result.exit_code == 2
    assert "stripe" in result.stderr


@pytest.mark.parametrize("command", ["sign", "verify"])
def test_signing_help_teaches_with_examples(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])

    assert result.exit_code == 0
    assert f"hooklab {command} --scheme" in result.output
    assert "--secret-env VAR" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--msg-id", "a\nb: c"], "'--msg-id': must be printable ASCII"),
        (
            ["--scheme", "hmac", "--hmac-header", ""],
            "'--hmac-header': must not be empty",
        ),
        (["--timestamp", "253402300800"], "'--timestamp': 253402300800 is not in"),
        (["--timestamp", "-5"], "'--timestamp': -5 is not in"),
        (["--url", "ftp://x/"], "'--url': 'ftp://x/' is not an http:// or https://"),
    ],
    ids=["header-injection", "empty-hmac-header", "year-10000", "negative", "ftp"],
)
def test_sign_refuses_values_that_break_the_headers_it_prints(
    body_file: Path, args: list[str], message: str
) -> None:
    scheme = [] if "--scheme" in args else ["--scheme", "github"]
    result = CliRunner().invoke(
        main,
        ["sign", *scheme, "--secret-env", "HOOKLAB_TEST_SECRET", "--body-file",
         str(body_file), *args],
        env={"HOOKLAB_TEST_SECRET": "s3cret"},
    )  # fmt: skip

    assert result.exit_code == 2
    assert message in result.stderr
