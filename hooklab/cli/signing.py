"""``hooklab sign`` and ``hooklab verify``: webhook signatures from the shell.

Secrets are read from the environment variables named with ``--secret-env``; their
values are never printed. ``verify`` exits 0 when the delivery is valid, 1 when it is
refused (saying why) and 2 on a usage mistake.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

import click

from hooklab.cli._app import (
    finite,
    header_value,
    http_url,
    main,
    non_empty,
    run_or_exit,
)
from hooklab.errors import ConfigError
from hooklab.signing import (
    PlainHmac,
    Scheme,
    SignatureError,
    Verified,
    Verifier,
    get_scheme,
    schemes,
    sign,
)
from hooklab.signing.plain_hmac import ALGORITHMS, ENCODINGS
from hooklab.signing.twilio import url_with_body_hash

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")

F = TypeVar("F", bound=Callable[..., Any])


def _hmac_options(command: F) -> F:
    """Add the options that configure ``--scheme hmac``."""
    options = [
        click.option(
            "--hmac-header",
            callback=non_empty,
            help="With --scheme hmac: the signature header.  [default: X-Signature]",
        ),
        click.option(
            "--hmac-algorithm",
            type=click.Choice(list(ALGORITHMS)),
            help="With --scheme hmac: the digest.  [default: sha256]",
        ),
        click.option(
            "--hmac-encoding",
            type=click.Choice(list(ENCODINGS)),
            help="With --scheme hmac: how the digest is written.  [default: hex]",
        ),
        click.option(
            "--hmac-prefix",
            help="With --scheme hmac: text before the digest, such as 'sha256='.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_SCHEME = click.option(
    "--scheme",
    required=True,
    type=click.Choice(schemes()),
    help="The provider's signature scheme.",
)
_URL = click.option(
    "--url",
    callback=http_url,
    help=(
        "The full URL the provider posts to (twilio, twilio-json, square, hubspot "
        "and hubspot-v2 sign it)."
    ),
)
_BODY = click.option(
    "--body-file",
    required=True,
    type=click.File("rb", lazy=True),  # opened only once every option is valid
    help="The raw body, byte for byte ('-' reads standard input).",
)


@main.command(name="sign")
@_SCHEME
@click.option(
    "--secret-env",
    "secret_env",
    required=True,
    metavar="VAR",
    help="Environment variable holding the secret (its value is never shown).",
)
@_BODY
@_URL
@click.option(
    "--timestamp",
    type=click.IntRange(0, 253_402_300_799),  # up to 9999-12-31T23:59:59Z
    help="Unix seconds to sign at.  [default: now]",
)
@click.option(
    "--msg-id",
    callback=header_value,
    help="Delivery id, for schemes whose headers carry one.",
)
@_hmac_options
def sign_command(
    scheme: str,
    secret_env: str,
    body_file: BinaryIO,
    url: str | None,
    timestamp: int | None,
    msg_id: str | None,
    **hmac_options: str | None,
) -> None:
    """Print the headers a provider would send with the body, one 'Name: value' a line.

    The output feeds straight back into `hooklab verify --header`. For twilio-json
    the URL to post to (with its bodySHA256 parameter) is printed on stderr.

    \b
    Examples:
      export SHOP_SECRET=...   # the app's client secret
      hooklab sign --scheme shopify --secret-env SHOP_SECRET --body-file order.json
      hooklab sign --scheme twilio --secret-env TWILIO_AUTH_TOKEN \\
          --body-file sms.txt --url https://hooks.example.com/sms
    """
    body = body_file.read()

    def work() -> dict[str, str]:
        chosen = _scheme(scheme, hmac_options)
        secret = _secrets([secret_env])[0]
        return sign(chosen, secret, body, timestamp=timestamp, msg_id=msg_id, url=url)

    headers = run_or_exit(work)
    for name, value in headers.items():
        click.echo(f"{name}: {value}")
    if scheme == "twilio-json" and url:
        click.echo(f"post to: {url_with_body_hash(url, body)}", err=True)


@main.command(name="verify")
@_SCHEME
@click.option(
    "--secret-env",
    "secret_envs",
    required=True,
    multiple=True,
    metavar="VAR",
    help="Environment variable holding a secret; repeat it during a rotation.",
)
@click.option(
    "--header",
    "header_lines",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="A header of the delivery, as sent; repeat for each.",
)
@_BODY
@_URL
@click.option(
    "--now",
    type=click.FloatRange(min=0, max=1e11),
    callback=finite,
    help="Unix seconds to check the timestamp against.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0, max=1e9),
    callback=finite,
    help="Seconds of clock skew to allow.",
)
@_hmac_options
def verify_command(
    scheme: str,
    secret_envs: tuple[str, ...],
    header_lines: tuple[str, ...],
    body_file: BinaryIO,
    url: str | None,
    now: float | None,
    tolerance: float | None,
    **hmac_options: str | None,
) -> None:
    """Check one delivery's signature; exit 0 if valid, 1 if refused, 2 on a mistake.

    A refusal prints which header was wrong and why (missing, malformed, outside the
    timestamp window, or signed with another secret), never the secret or the
    signature expected. The tolerance defaults to the provider's own window.

    \b
    Examples:
      hooklab verify --scheme github --secret-env GH_SECRET \\
          --header 'X-Hub-Signature-256: sha256=7571...' --body-file push.json
      hooklab verify --scheme stripe --secret-env NEW --secret-env OLD \\
          --header "Stripe-Signature: $SIG" --body-file event.json --now 1750000000
    """
    body = body_file.read()

    def work() -> tuple[Verifier, dict[str, str]]:
        headers = _headers(header_lines)
        chosen = _scheme(scheme, hmac_options)
        return Verifier(chosen, _secrets(secret_envs), tolerance=tolerance), headers

    verifier, headers = run_or_exit(work)
    try:
        result = verifier.verify(headers, body, now=now, url=url)
    except SignatureError as exc:
        click.echo(f"refused ({type(exc).__name__}): {exc}")
        sys.exit(1)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    click.echo(_describe(result, secret_envs))


def _describe(result: Verified, secret_envs: tuple[str, ...]) -> str:
    parts = [f"valid: {result.scheme}", f"secret ${secret_envs[result.secret_index]}"]
    if result.timestamp is not None:
        parts.append(f"signed at {result.timestamp}")
    if result.event_id:
        parts.append(f"delivery id {result.event_id}")
    return ", ".join(parts)


def _scheme(name: str, hmac_options: dict[str, str | None]) -> Scheme:
    """The named scheme, or a PlainHmac built from the --hmac-* options."""
    given = {key.removeprefix("hmac_"): v for key, v in hmac_options.items() if v}
    if not given:
        return get_scheme(name)

    if name != "hmac":
        flags = ", ".join(f"--hmac-{key}" for key in given)
        raise ConfigError(f"{flags} only work with --scheme hmac, not {name}.")
    return PlainHmac(**given)


def _secrets(names: tuple[str, ...] | list[str]) -> list[str]:
    """The values of the named environment variables, refusing unset ones."""
    values = []
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                "--secret-env takes the NAME of an environment variable, such as "
                "SHOP_WEBHOOK_SECRET, never the secret itself (what was given is "
                "not shown)."
            )
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"The environment variable {name} is not set or empty.")
        values.append(value)
    return values


def _headers(lines: tuple[str, ...]) -> dict[str, str]:
    """Parse 'Name: value' lines into a mapping; a later duplicate wins."""
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ConfigError(
                f"--header expects 'Name: value', such as 'Stripe-Signature: t=...'; "
                f"got one without a name and a colon ({len(line)} characters)."
            )
        headers[name.strip()] = value.strip()
    return headers
