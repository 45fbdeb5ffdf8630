"""The endpoint-security study: advice per app, demonstrations and refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from hooklab.signing import schemes, verify
from hooklab.spec import App, Engagement
from hooklab.studies import security


def _with_apps(example: Engagement, *apps: App) -> Engagement:
    return example.model_copy(update={"apps": [*example.apps, *apps]})


def test_recommend_example_covers_every_webhook_app_in_order(
    example: Engagement,
) -> None:
    advice = security.recommend(example)

    assert [row.app for row in advice] == [
        app.id for app in example.apps if app.webhooks
    ]


@pytest.mark.parametrize(
    ("app", "scheme", "replay", "secret"),
    [
        ("shop", "shopify", "none signed", "$ACME_SHOP_WEBHOOK_SECRET"),
        ("billing", "stripe", "signed timestamp, 300 s window", "$ACME_BILLING"),
        ("accounting", "hmac", "none signed", "none named"),
        ("helpdesk", "zendesk", "signed timestamp, 300 s window", "none named"),
        ("crm", "hubspot", "signed timestamp, 300 s window", "none named"),
        ("email", "none", "none", "none named"),
    ],
)
def test_recommend_example_app_gets_provider_scheme_and_secret_state(
    example: Engagement, app: str, scheme: str, replay: str, secret: str
) -> None:
    row = next(row for row in security.recommend(example) if row.app == app)

    assert row.scheme == scheme
    assert row.replay.startswith(replay)
    assert row.secret.startswith(secret)


def test_recommend_unsupported_provider_says_why(example: Engagement) -> None:
    email = next(r for r in security.recommend(example) if r.app == "email")

    assert "Postmark does not sign webhooks" in email.advice


def test_recommend_zendesk_declared_as_plain_hmac_is_corrected(
    example: Engagement,
) -> None:
    """The example declares 'hmac' for Zendesk, whose HMAC also covers a timestamp."""
    helpdesk = next(r for r in security.recommend(example) if r.app == "helpdesk")

    assert helpdesk.advice.startswith("Verify with 'zendesk' on the raw body")
    assert "not 'hmac' as the engagement says" in helpdesk.advice


def test_recommend_declared_scheme_differing_from_provider_is_flagged(
    example: Engagement,
) -> None:
    repo = App(
        id="repo",
        name="Code",
        provider="GitHub",
        webhooks=True,
        signature_scheme="stripe",
    )

    row = security.recommend(_with_apps(example, repo))[-1]

    assert row.scheme == "github"
    assert "not 'stripe' as the engagement says" in row.advice
    assert "name its secret under 'secrets' before go-live" in row.advice


def test_recommend_unknown_provider_with_known_declared_scheme_uses_it(
    example: Engagement,
) -> None:
    app = App(
        id="orders",
        name="In-house orders",
        provider="acme-internal",
        webhooks=True,
        signature_scheme="standard-webhooks",
    )

    row = security.recommend(_with_apps(example, app))[-1]

    assert row.scheme == "standard-webhooks"
    assert row.replay == "signed timestamp, 300 s window"


@pytest.mark.parametrize(
    ("provider", "header", "value"),
    [
        ("xero", "x-xero-signature", lambda d: base64.b64encode(d).decode()),
        (
            "typeform",
            "Typeform-Signature",
            lambda d: "sha256=" + base64.b64encode(d).decode(),
        ),
        (
            "woocommerce",
            "X-WC-Webhook-Signature",
            lambda d: base64.b64encode(d).decode(),
        ),
    ],
)
def test_plain_hmac_preset_verifies_provider_shaped_delivery(
    provider: str, header: str, value: object
) -> None:
    """Each preset accepts the header its provider's docs describe."""
    body = b'{"events":[{"resourceId":"inv-1"}]}'
    digest = hmac.new(b"provider-key", body, hashlib.sha256).digest()
    headers = {header: value(digest)}  # type: ignore[operator]

    preset = security.PLAIN_HMAC_PRESETS[provider]

    assert verify(preset, "provider-key", headers, body).secret_index == 0


def test_demo_deliveries_verify_in_every_scheme() -> None:
    demos = security.demo_deliveries(seed=3)

    assert [demo.scheme for demo in demos] == schemes()
    assert all(demo.outcome.startswith("verified by secret #0") for demo in demos)


def test_refusal_table_refuses_every_attack_and_accepts_rotation() -> None:
    table = security.refusal_table(seed=3)
    attacks = table.drop(columns=["second secret (rotation)"])

    assert list(table.index) == schemes()
    assert not (attacks == "accepted").to_numpy().any()
    assert (table["second secret (rotation)"] == "accepted").all()
    assert (table["tampered body"] == "signature mismatch").all()
    assert (table["signature header missing"] == "missing header").all()


def test_refusal_table_marks_timestamp_cases_only_for_untimed_schemes() -> None:
    table = security.refusal_table(seed=3)
    untimed = set(table.index[table["stale timestamp"] == "not signed"])

    assert untimed == {
        "github",
        "github-sha1",
        "hmac",
        "hubspot-v1",
        "hubspot-v2",
        "shopify",
        "square",
        "twilio",
        "twilio-json",
    }
    timed = table.drop(index=sorted(untimed))
    assert (timed["future timestamp"] == "timestamp out of tolerance").all()


@pytest.mark.parametrize("scheme", schemes())
def test_refusal_examples_messages_name_header_and_hide_signatures(scheme: str) -> None:
    examples = dict(security.refusal_examples(scheme, seed=3))

    assert examples["second secret (rotation)"] == "Accepted with secret #1."
    for message in examples.values():
        assert not re.search(r"[0-9a-f]{20,}|[A-Za-z0-9+/]{20,}={0,2}", message)


def test_secret_checks_reports_state_without_value(
    example: Engagement, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "shpss_0123456789abcdef")
    monkeypatch.delenv("ACME_BILLING_WEBHOOK_SECRET", raising=False)

    checks = {check.app: check for check in security.secret_checks(example)}

    assert checks["shop"].state == "set, 22 characters, usable by 'shopify'"
    assert checks["billing"].state == "not set in this environment"
    assert "shpss_" not in repr(checks)


def test_secret_checks_unusable_secret_says_why_without_value(
    example: Engagement, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(
        id="orders",
        name="Orders",
        provider="svix",
        webhooks=True,
        signature_scheme="svix",
        secret="shop_webhook",
    )
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "whsec_***not-base64***")

    check = security.secret_checks(_with_apps(example, app))[-1]

    assert check.state.startswith("set but unusable: A svix secret must be")
    assert "not-base64" not in check.state


def test_security_headline_counts_sources_and_replay_gaps(example: Engagement) -> None:
    advice = security.recommend(example)

    lines = security.security_headline(advice, security.refusal_table(seed=3))

    assert lines[0].startswith("6 of 7 webhook sources can be verified")
    assert "(helpdesk, accounting, forms, crm)" in lines[0]
    assert lines[1].startswith("email cannot be checked by a hooklab scheme and needs")
    assert lines[2].startswith("shop, accounting, forms sign no timestamp")
    assert lines[3].startswith("In this run every one of the 16 schemes refused")
