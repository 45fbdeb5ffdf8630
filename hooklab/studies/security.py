"""Endpoint security: who is calling each webhook endpoint, and how to be sure.

For every app of the engagement that sends webhooks, this study says which signature
scheme its provider uses, whether the engagement names a secret for it, whether the
scheme resists replays, and what to do. It also signs and verifies a demonstration
delivery in every scheme hooklab knows, and shows how each scheme refuses tampered,
stale, re-serialised and badly formed deliveries, all with ``hooklab.signing`` itself.

Demonstration secrets are drawn from the seed and never shown; the engagement's own
secrets are only checked for presence and format, never printed.
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from hooklab.errors import ConfigError
from hooklab.signing import (
    PlainHmac,
    Scheme,
    SignatureError,
    Verifier,
    get_scheme,
    hubspot,
    schemes,
    sign,
    zendesk,
)
from hooklab.signing.twilio import url_with_body_hash
from hooklab.spec import Engagement, secret_value
from hooklab.studies._words import agrees

__all__ = [
    "DEMO_NOW",
    "PLAIN_HMAC_PRESETS",
    "PROVIDER_SCHEMES",
    "REFUSAL_CASES",
    "Advice",
    "Demo",
    "SecretCheck",
    "advice_table",
    "demo_deliveries",
    "recommend",
    "refusal_examples",
    "refusal_table",
    "secret_checks",
    "security_headline",
]

#: The clock of every demonstration, so the chapter prints the same each run.
DEMO_NOW = 1_750_000_000
DEMO_URL = "https://hooks.example.com/inbound/demo"

#: Providers whose webhooks use one of hooklab's named schemes (see hooklab.signing).
PROVIDER_SCHEMES: dict[str, str] = {
    "github": "github",
    "hubspot": "hubspot",
    "paddle": "paddle",
    "shopify": "shopify",
    "slack": "slack",
    "square": "square",
    "standard-webhooks": "standard-webhooks",
    "stripe": "stripe",
    "svix": "svix",
    "twilio": "twilio",
    "zendesk": "zendesk",
}

#: Providers that send a plain HMAC of the body, and its exact shape.
PLAIN_HMAC_PRESETS: dict[str, PlainHmac] = {
    # Xero developer docs, "Webhooks" > "Signature": x-xero-signature, base64
    # HMAC-SHA256 of the raw body with the webhook key.
    "xero": PlainHmac(header="x-xero-signature", encoding="base64"),
    # Typeform docs, "Secure your webhooks": Typeform-Signature, 'sha256=' then the
    # base64 HMAC-SHA256 of the raw body.
    "typeform": PlainHmac(
        header="Typeform-Signature", encoding="base64", prefix="sha256="
    ),
    # WooCommerce REST API docs, "Webhooks": X-WC-Webhook-Signature, base64
    # HMAC-SHA256 of the raw body with the webhook secret.
    "woocommerce": PlainHmac(header="X-WC-Webhook-Signature", encoding="base64"),
}

#: Providers with no signature for hooklab to check, and what to do instead.
_UNSUPPORTED: dict[str, str] = {
    # Postmark docs, "Webhooks overview": basic HTTP auth and IP ranges, no HMAC.
    "postmark": (
        "Postmark does not sign webhooks; require HTTP basic auth over HTTPS on an "
        "unguessable URL, and fetch each event back through the API before acting"
    ),
}


@dataclass(frozen=True)
class Advice:
    """How one webhook-sending app should be verified, and what is missing."""

    app: str
    provider: str
    declared: str
    scheme: str
    replay: str
    secret: str
    advice: str


def recommend(engagement: Engagement) -> list[Advice]:
    """One piece of advice per app that sends webhooks, in the engagement's order."""
    return [_advise(engagement, app.id) for app in engagement.apps if app.webhooks]


def advice_table(advice: Sequence[Advice]) -> pd.DataFrame:
    """The advice as a table indexed by app."""
    return pd.DataFrame([asdict(row) for row in advice]).set_index("app")


def _advise(engagement: Engagement, app_id: str) -> Advice:
    app = engagement.app(app_id)
    provider = app.provider.lower()
    declared = app.signature_scheme or "none"
    scheme = _scheme_for(provider, app.signature_scheme)

    secret = f"${engagement.secrets[app.secret].env}" if app.secret else "none named"
    replay = _replay(scheme)
    text = _advice_text(provider, declared, scheme, app.secret is not None)
    return Advice(app.id, app.provider, declared, scheme, replay, secret, text)


def _scheme_for(provider: str, declared: str | None) -> str:
    """The scheme the provider really uses, else the declared one if hooklab has it."""
    if provider in PROVIDER_SCHEMES:
        return PROVIDER_SCHEMES[provider]
    if provider in PLAIN_HMAC_PRESETS:
        return "hmac"
    if provider in _UNSUPPORTED:
        return "none"
    return declared if declared in schemes() else "none"


def _replay(scheme: str) -> str:
    if scheme == "none":
        return "none"

    window = get_scheme(scheme).default_tolerance
    if window is None:
        return "none signed: deduplicate by delivery id"
    return f"signed timestamp, {window:g} s window"


def _advice_text(provider: str, declared: str, scheme: str, has_secret: bool) -> str:
    if provider in _UNSUPPORTED:
        return _UNSUPPORTED[provider] + "."
    if scheme == "none":
        return (
            f"hooklab knows no signature for provider {provider!r}; ask the provider "
            "how it signs webhooks, and until then require basic auth over HTTPS."
        )

    steps = [f"Verify with {_scheme_label(provider, scheme)} on the raw body"]
    if declared not in ("none", scheme):
        steps.append(f"not {declared!r} as the engagement says")
    steps.append(
        "read the secret from its variable"
        if has_secret
        else "name its secret under 'secrets' before go-live"
    )
    steps.append("list old and new secrets during a rotation")
    return "; ".join(steps) + "."


def _scheme_label(provider: str, scheme: str) -> str:
    if scheme != "hmac" or provider not in PLAIN_HMAC_PRESETS:
        return f"'{scheme}'"
    preset = PLAIN_HMAC_PRESETS[provider]
    return f"'hmac' ({preset.header}, {preset.algorithm}, {preset.encoding})"


@dataclass(frozen=True)
class SecretCheck:
    """Whether an app's named secret is set here and usable by its scheme."""

    app: str
    variable: str
    state: str


def secret_checks(engagement: Engagement) -> list[SecretCheck]:
    """Check each named webhook secret's presence and format; never its value."""
    checks = []
    for row in recommend(engagement):
        app = engagement.app(row.app)
        if app.secret is None:
            continue
        variable = engagement.secrets[app.secret].env
        state = _secret_state(secret_value(engagement, app.secret), row.scheme)
        checks.append(SecretCheck(app.id, f"${variable}", state))
    return checks


def _secret_state(value: str | None, scheme: str) -> str:
    if value is None:
        return "not set in this environment"
    if scheme == "none":
        return "set (no scheme to check it against)"
    try:
        get_scheme(scheme).decode_secret(value)
    except ConfigError as exc:
        return f"set but unusable: {exc}"
    return f"set, {len(value)} characters, usable by '{scheme}'"


# Demonstrations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    """One demonstration delivery: what was sent and what verification reported."""

    scheme: str
    headers: str
    outcome: str


def demo_deliveries(seed: int) -> list[Demo]:
    """Sign one delivery in every registered scheme, then verify it."""
    demos = []
    for name in schemes():
        secrets = _demo_secrets(name, seed)
        body = _demo_body(name)
        headers = _demo_sign(name, secrets[0], body)

        result = Verifier(name, secrets).verify(
            headers, body, now=DEMO_NOW, url=_demo_url(name, body)
        )
        outcome = f"verified by secret #{result.secret_index}"
        if result.timestamp is not None:
            outcome += f", signed {DEMO_NOW - result.timestamp} s ago"
        demos.append(Demo(name, ", ".join(headers), outcome))
    return demos


#: Each refusal case: a change to a signed delivery, as (headers, body, now, secrets).
_Case = tuple[dict[str, str], bytes, int, list[str]]
REFUSAL_CASES: tuple[str, ...] = (
    "tampered body",
    "JSON re-spaced",
    "wrong secret",
    "stale timestamp",
    "future timestamp",
    "signature header missing",
    "signature header garbled",
    "second secret (rotation)",
)


def refusal_table(seed: int) -> pd.DataFrame:
    """Scheme by case: the refusal each case meets, or 'accepted'/'not signed'."""
    rows = {}
    for name in schemes():
        rows[name] = {case: _outcome(name, case, seed)[0] for case in REFUSAL_CASES}
    return pd.DataFrame.from_dict(rows, orient="index")[list(REFUSAL_CASES)]


def refusal_examples(scheme: str, seed: int) -> list[tuple[str, str]]:
    """Each case's outcome and full message for one scheme, as a user would see it."""
    return [(case, _outcome(scheme, case, seed)[1]) for case in REFUSAL_CASES]


def _outcome(name: str, case: str, seed: int) -> tuple[str, str]:
    """The short outcome and the message of one case against one scheme."""
    secrets = _demo_secrets(name, seed)
    built = _CASES[case](name, secrets)
    if built is None:
        return "not signed", "The scheme signs no timestamp; see 'replay' advice."

    headers, body, now, verifying = built
    try:
        result = Verifier(name, verifying).verify(
            headers, body, now=now, url=_demo_url(name, body)
        )
    except SignatureError as exc:
        return _in_words(type(exc).__name__), str(exc)
    return "accepted", f"Accepted with secret #{result.secret_index}."


def _in_words(class_name: str) -> str:
    """``TimestampOutOfTolerance`` as "timestamp out of tolerance": table cells
    that wrap, so the refusal table fits a page."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", class_name).lower()


def _signed_case(name: str, secrets: list[str]) -> tuple[dict[str, str], bytes]:
    body = _demo_body(name)
    return _demo_sign(name, secrets[0], body), body


def _tampered(name: str, secrets: list[str]) -> _Case:
    headers, body = _signed_case(name, secrets)
    return headers, body.replace(b"4200", b"4201"), DEMO_NOW, secrets[:1]


def _respaced(name: str, secrets: list[str]) -> _Case:
    headers, body = _signed_case(name, secrets)
    if name == "twilio":
        return headers, body.replace(b"+", b"%20%20", 1), DEMO_NOW, secrets[:1]
    spaced = json.dumps(json.loads(body), indent=2).encode()
    return headers, spaced, DEMO_NOW, secrets[:1]


def _wrong_secret(name: str, secrets: list[str]) -> _Case:
    headers, body = _signed_case(name, secrets)
    return headers, body, DEMO_NOW, secrets[1:]


def _shifted(offset: int) -> Callable[[str, list[str]], _Case | None]:
    def build(name: str, secrets: list[str]) -> _Case | None:
        window = get_scheme(name).default_tolerance
        if window is None:
            return None
        headers, body = _signed_case(name, secrets)
        return headers, body, DEMO_NOW + offset * int(window + 60), secrets[:1]

    return build


def _without_signature(name: str, secrets: list[str]) -> _Case:
    headers, body = _signed_case(name, secrets)
    signature = _signature_header(name)
    kept = {k: v for k, v in headers.items() if k.lower() != signature.lower()}
    return kept, body, DEMO_NOW, secrets[:1]


def _garbled(name: str, secrets: list[str]) -> _Case:
    headers, body = _signed_case(name, secrets)
    signature = next(k for k in headers if k.lower() == _signature_header(name).lower())
    return {**headers, signature: "0000"}, body, DEMO_NOW, secrets[:1]


def _rotation(name: str, secrets: list[str]) -> _Case:
    headers, body = _signed_case(name, secrets)
    return headers, body, DEMO_NOW, [secrets[1], secrets[0]]


_CASES: dict[str, Callable[[str, list[str]], _Case | None]] = {
    "tampered body": _tampered,
    "JSON re-spaced": _respaced,
    "wrong secret": _wrong_secret,
    "stale timestamp": _shifted(+1),
    "future timestamp": _shifted(-1),
    "signature header missing": _without_signature,
    "signature header garbled": _garbled,
    "second secret (rotation)": _rotation,
}


def _signature_header(name: str) -> str:
    """The header that carries the signature in ``name``'s deliveries."""
    scheme: Scheme = get_scheme(name)
    if isinstance(scheme, PlainHmac):
        return scheme.header
    return {
        "standard-webhooks": "webhook-signature",
        "svix": "svix-signature",
        "stripe": "Stripe-Signature",
        "slack": "X-Slack-Signature",
        "twilio": "X-Twilio-Signature",
        "twilio-json": "X-Twilio-Signature",
        "square": "x-square-hmacsha256-signature",
        "paddle": "Paddle-Signature",
        "zendesk": zendesk.SIGNATURE_HEADER,
        "hubspot": hubspot.V3_HEADER,
        "hubspot-v1": hubspot.LEGACY_HEADER,
        "hubspot-v2": hubspot.LEGACY_HEADER,
    }[name]


def _demo_secrets(name: str, seed: int) -> list[str]:
    """A current and an old secret in the scheme's own format, drawn from the seed."""
    draw = random.Random(f"{seed}:{name}")
    raw = [draw.randbytes(24) for _ in range(2)]
    if name in ("standard-webhooks", "svix"):
        return ["whsec_" + base64.b64encode(key).decode() for key in raw]
    return [key.hex() for key in raw]


def _demo_body(name: str) -> bytes:
    if name == "twilio":
        return b"AccountSid=AC0001&Body=Order+4200+shipped&From=%2B15555550100"
    event = {"type": "invoice.paid", "data": {"amount": 4200, "customer": "Zoë"}}
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _demo_url(name: str, body: bytes) -> str:
    """The URL each delivery was posted to; schemes that do not sign it ignore it."""
    if name == "twilio-json":
        return url_with_body_hash(DEMO_URL, body)
    return DEMO_URL


def _demo_sign(name: str, secret: str, body: bytes) -> dict[str, str]:
    return sign(
        name, secret, body, timestamp=DEMO_NOW - 2, msg_id="msg_demo_0001", url=DEMO_URL
    )


def security_headline(advice: Sequence[Advice], refusals: pd.DataFrame) -> list[str]:
    """Two or three sentences for the report's key findings."""
    checked = [row.app for row in advice if row.scheme != "none"]
    unchecked = [row.app for row in advice if row.scheme == "none"]
    no_secret = [row.app for row in advice if row.scheme != "none" and not _named(row)]
    no_replay = [row.app for row in advice if row.replay.startswith("none signed")]

    lines = [
        f"{len(checked)} of {len(advice)} webhook sources can be verified with "
        f"hooklab's signature schemes ({', '.join(checked) or 'none'})"
        + (
            f"; {len(no_secret)} of them {agrees(len(no_secret), 'has', 'have')} no "
            f"secret named yet ({', '.join(no_secret)})."
            if no_secret
            else ", each with its secret named."
        )
    ]
    if unchecked:
        lines.append(
            f"{', '.join(unchecked)} cannot be checked by a hooklab scheme and "
            f"{agrees(len(unchecked), 'needs its', 'need their')} own protection "
            "(see the advice table)."
        )
    if no_replay:
        lines.append(
            f"{', '.join(no_replay)} {agrees(len(no_replay), 'signs', 'sign')} no "
            "timestamp, so a captured delivery can be replayed: the receiver must "
            "deduplicate by delivery id."
        )

    attacks = refusals.drop(columns=["second secret (rotation)"])
    accepted = int((attacks == "accepted").to_numpy().sum())
    lines.append(
        f"In this run every one of the {len(refusals)} schemes refused each tampered, "
        "re-spaced, wrongly keyed, stale, future or malformed delivery it signs for."
        if accepted == 0
        else f"{accepted} tampered deliveries were accepted: investigate."
    )
    return lines


def _named(row: Advice) -> bool:
    return row.secret != "none named"
