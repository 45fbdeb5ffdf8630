"""Every provider scheme: published vectors, a table of refusals, and properties.

The known-answer vectors below are the providers' own published examples (their
documentation or their SDKs' tests), each citing where it comes from; the shared data
folder's vectors run in tests/test_signing.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hooklab.errors import ConfigError
from hooklab.signing import (
    MalformedHeader,
    MissingHeader,
    PlainHmac,
    SignatureError,
    SignatureMismatch,
    TimestampOutOfTolerance,
    Verifier,
    get_scheme,
    schemes,
    sign,
    verify,
)
from hooklab.signing._checks import hmac_digest
from hooklab.signing.twilio import url_with_body_hash

NOW = 1_750_000_000
URL = "https://hooks.example.com/inbound/acme?tenant=7"
JSON_BODY = json.dumps(
    {"id": "evt_1", "type": "order.created", "customer": "Zoë Ångström, München"},
    ensure_ascii=False,
    separators=(",", ":"),
).encode()
FORM_BODY = b"AccountSid=AC0001&Body=Hello+there&From=%2B15555550100&To=%2B15555550101"


def _whsec(seed: bytes) -> str:
    return "whsec_" + base64.b64encode(hashlib.sha256(seed).digest()).decode()


#: One secret and one rotated-out secret per scheme, in each provider's own format.
SECRETS: dict[str, tuple[str, str]] = {
    "standard-webhooks": (_whsec(b"sw-current"), _whsec(b"sw-old")),
    "svix": (_whsec(b"svix-current"), _whsec(b"svix-old")),
    "stripe": ("whsec_hooklabtestcurrent0123456789", "whsec_hooklabtestold9876543210"),
    "github": ("gh-current-secret", "gh-old-secret"),
    "github-sha1": ("gh-current-secret", "gh-old-secret"),
    "shopify": ("shpss_current_client_secret", "shpss_old_client_secret"),
    "slack": ("8f742231b10e8888abcd99current", "8f742231b10e8888abcd99old000"),
    "twilio": ("twilio-auth-token-current", "twilio-auth-token-old"),
    "twilio-json": ("twilio-auth-token-current", "twilio-auth-token-old"),
    "square": ("square-signature-key-current", "square-signature-key-old"),
    "paddle": ("pdl_ntfset_01current_secretAAAA", "pdl_ntfset_01old_secretBBBB"),
    "zendesk": ("dGhpc19pc19jdXJyZW50X3NlY3JldA==", "dGhpc19pc19vbGRfc2VjcmV0"),
    "hubspot": (
        "11111111-aaaa-4bbb-8ccc-current00001",
        "22222222-dddd-4eee-8fff-old000000002",
    ),
    "hubspot-v1": (
        "11111111-aaaa-4bbb-8ccc-current00001",
        "22222222-dddd-4eee-8fff-old000000002",
    ),
    "hubspot-v2": (
        "11111111-aaaa-4bbb-8ccc-current00001",
        "22222222-dddd-4eee-8fff-old000000002",
    ),
    "hmac": ("generic-shared-secret", "generic-old-secret"),
}

#: The header carrying the signature, and the one carrying the timestamp if apart.
SIGNATURE_HEADER = {
    "standard-webhooks": "webhook-signature",
    "svix": "svix-signature",
    "stripe": "Stripe-Signature",
    "github": "X-Hub-Signature-256",
    "github-sha1": "X-Hub-Signature",
    "shopify": "X-Shopify-Hmac-Sha256",
    "slack": "X-Slack-Signature",
    "twilio": "X-Twilio-Signature",
    "twilio-json": "X-Twilio-Signature",
    "square": "x-square-hmacsha256-signature",
    "paddle": "Paddle-Signature",
    "zendesk": "X-Zendesk-Webhook-Signature",
    "hubspot": "X-HubSpot-Signature-v3",
    "hubspot-v1": "X-HubSpot-Signature",
    "hubspot-v2": "X-HubSpot-Signature",
    "hmac": "X-Signature",
}
TIMESTAMP_HEADER = {
    "standard-webhooks": "webhook-timestamp",
    "svix": "svix-timestamp",
    "slack": "X-Slack-Request-Timestamp",
    "zendesk": "X-Zendesk-Webhook-Signature-Timestamp",
    "hubspot": "X-HubSpot-Request-Timestamp",
}
TIMED = ("standard-webhooks", "svix", "stripe", "slack", "paddle", "zendesk", "hubspot")
URL_SCHEMES = ("twilio", "twilio-json", "square", "hubspot", "hubspot-v2")
ALL = tuple(SIGNATURE_HEADER)


def _body(scheme: str) -> bytes:
    return FORM_BODY if scheme == "twilio" else JSON_BODY


def _url(scheme: str, body: bytes) -> str | None:
    if scheme == "twilio-json":
        return url_with_body_hash(URL, body)
    return URL if scheme in URL_SCHEMES else None


def _sign(scheme: str, body: bytes, *, secret: str | None = None) -> dict[str, str]:
    key = SECRETS[scheme][0] if secret is None else secret
    return sign(scheme, key, body, timestamp=NOW, msg_id="msg_0001", url=URL)


def _verify(scheme: str, headers: dict[str, str], body: bytes, **options: Any) -> Any:
    options.setdefault("now", NOW)
    secrets = options.pop("secrets", SECRETS[scheme][0])
    return verify(scheme, secrets, headers, body, url=_url(scheme, body), **options)


# Published known-answer vectors ------------------------------------------------------

#: HubSpot's placeholder client secret and body, from its docs and SDK tests.
HUBSPOT_SDK_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
HUBSPOT_SDK_BODY = b"{'example_field':'example_value'}"

KNOWN_ANSWERS = [
    pytest.param(
        "github",
        "It's a Secret to Everybody",
        b"Hello, World!",
        {},
        {
            "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7"
            "586c22c46f4379c8b043e17"
        },
        id="github-docs-validating-webhook-deliveries",
    ),
    pytest.param(
        "github",
        "mysecret",
        b'{"foo":"bar"}',
        {},
        {
            "X-Hub-Signature-256": "sha256=4864d2759938a15468b5df9ade20bf161da9b4f73"
            "7ea61794142f3484236bda3"
        },
        id="github-octokit-webhooks-methods-sign-test",
    ),
    pytest.param(
        "github-sha1",
        "mysecret",
        b'{"foo":"bar"}',
        {},
        {"X-Hub-Signature": "sha1=d03207e4b030cf234e3447bac4d93add4c6643d8"},
        id="github-sha1-octokit-webhooks-methods-readme",
    ),
    pytest.param(
        "shopify",
        "test_secret_key",
        b'{"foo": "bar"}',
        {},
        {"X-Shopify-Hmac-Sha256": "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="},
        id="shopify-app-js-webhooks-validate-test",
    ),
    pytest.param(
        "slack",
        "8f742231b10e8888abcd99yyyzzz85a5",
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name="
        b"roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2F"
        b"hooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRsk"
        b"XaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        {"timestamp": 1531420618},
        {
            "X-Slack-Request-Timestamp": "1531420618",
            "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd2"
            "7519666489c69b503",
        },
        id="slack-docs-verifying-requests-example",
    ),
    pytest.param(
        "svix",
        "whsec_plJ3nmyCDGBKInavdOK15jsl",
        b'{"event_type":"ping","data":{"success":true}}',
        {"timestamp": 1731705121, "msg_id": "msg_loFOjxBNrRLzqYUf"},
        {
            "svix-id": "msg_loFOjxBNrRLzqYUf",
            "svix-timestamp": "1731705121",
            "svix-signature": "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=",
        },
        id="svix-docs-verifying-manually-example",
    ),
    pytest.param(
        "twilio",
        "12345",
        b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234"
        b"&From=%2B12349013030&To=%2B18005551212",
        {"url": "https://mycompany.com/myapp.php?foo=1&bar=2"},
        {"X-Twilio-Signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
        id="twilio-docs-webhooks-security-example",
    ),
    pytest.param(
        "twilio",
        "12345",
        b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234",
        {"url": "https://mycompany.com/myapp.php?foo=1&bar=2"},
        {"X-Twilio-Signature": "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
        id="twilio-python-request-validator-duplicate-params",
    ),
    pytest.param(
        "twilio-json",
        "12345",
        b'{"property": "value", "boolean": true}',
        {"url": "https://mycompany.com/myapp.php?foo=1&bar=2"},
        {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="},
        id="twilio-python-request-validator-body-sha256",
    ),
    pytest.param(
        "square",
        "Ibxx_5AKakO-3qeNVR61Dw",
        b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
        b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":'
        b'"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":'
        b'"bc368e64-01aa-407e-b46e-3231809b1129"}}',
        {"url": "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"},
        {
            "x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9"
            "/2N4="
        },
        id="square-python-sdk-webhooks-helper-pass",
    ),
    pytest.param(
        "standard-webhooks",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        b'{"test": 2432232314}',
        {"timestamp": 1614265330, "msg_id": "msg_p5jXN8AQM9LWM0D4loKWxJek"},
        {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        id="standard-webhooks-python-library-sign-test",
    ),
    pytest.param(
        "hubspot-v1",
        HUBSPOT_SDK_SECRET,
        HUBSPOT_SDK_BODY,
        {},
        {
            "X-HubSpot-Signature": "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b"
            "8901c1fa57f750",
            "X-HubSpot-Signature-Version": "v1",
        },
        id="hubspot-api-python-signature-test-v1",
    ),
    pytest.param(
        "hubspot-v1",
        HUBSPOT_SDK_SECRET,
        b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":'
        b'1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,'
        b'"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]',
        {},
        {
            "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3c"
            "a654d05f4817de",
            "X-HubSpot-Signature-Version": "v1",
        },
        id="hubspot-docs-v1-request-validation-example",
    ),
    pytest.param(
        "hubspot-v2",
        HUBSPOT_SDK_SECRET,
        HUBSPOT_SDK_BODY,
        {"url": "https://www.example.com/webhook_uri"},
        {
            "X-HubSpot-Signature": "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355"
            "b876a689a1c383",
            "X-HubSpot-Signature-Version": "v2",
        },
        id="hubspot-api-python-signature-test-v2",
    ),
    pytest.param(
        "hubspot",
        HUBSPOT_SDK_SECRET,
        HUBSPOT_SDK_BODY,
        # The SDK test signs the millisecond timestamp 15000000, that is 15,000 s.
        {"url": "https://www.example.com/webhook_uri", "timestamp": 15_000},
        {
            "X-HubSpot-Signature-v3": "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=",
            "X-HubSpot-Request-Timestamp": "15000000",
        },
        id="hubspot-api-python-signature-test-v3",
    ),
]


@pytest.mark.parametrize(
    ("scheme", "secret", "body", "options", "expected"), KNOWN_ANSWERS
)
def test_sign_published_vector_reproduces_provider_headers(
    scheme: str,
    secret: str,
    body: bytes,
    options: dict[str, Any],
    expected: dict[str, str],
) -> None:
    """Signing the published inputs gives the published headers, byte for byte."""
    headers = sign(scheme, secret, body, **options)
    if scheme == "twilio-json":
        # The published URL already carries bodySHA256; signing adds the same one.
        assert url_with_body_hash(options["url"], body).endswith(
            "bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf"
            "19632632f96e6620"
        )

    assert headers == expected


@pytest.mark.parametrize(
    ("scheme", "secret", "body", "options", "expected"), KNOWN_ANSWERS
)
def test_verify_published_vector_is_accepted(
    scheme: str,
    secret: str,
    body: bytes,
    options: dict[str, Any],
    expected: dict[str, str],
) -> None:
    url = options.get("url")
    if scheme == "twilio-json":
        url = url_with_body_hash(url, body)

    result = verify(
        scheme, secret, expected, body, url=url, now=options.get("timestamp", NOW)
    )

    assert result.scheme == scheme
    assert result.secret_index == 0


def test_verify_paddle_sdk_vector_second_h1_matches() -> None:
    """PaddleHQ/paddle-python-sdk test_Verifier.py: a 'dummy' h1, then the real one."""
    header = (
        "ts=1696195954;h1=dummy;"
        "h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
    )
    secret = "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh"

    result = verify(
        "paddle", secret, {"Paddle-Signature": header}, b"hello-world", now=1696195954
    )

    assert result.timestamp == 1696195954


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://mycompany.com:443/myapp.php?foo=1&bar=2", id="https-443"),
        pytest.param("https://mycompany.com:1234/myapp.php?foo=1&bar=2", id="any-port"),
    ],
)
def test_verify_twilio_url_port_spellings_match_portless_signature(url: str) -> None:
    """twilio-python test_request_validator.py: ports are tried with and without."""
    body = (
        b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309"
        b"&To=%2B18005551212&Caller=%2B14158675309"
    )
    headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}

    assert verify("twilio", "12345", headers, body, url=url).secret_index == 0


def test_verify_twilio_signature_made_with_default_port_matches_url_without() -> None:
    """twilio-python: a signature over https://host:443/... verifies without :443."""
    body = (
        b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309"
        b"&To=%2B18005551212&Caller=%2B14158675309"
    )
    headers = {"X-Twilio-Signature": "kvajT1Ptam85bY51eRf/AJRuM3w="}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"

    assert verify("twilio", "12345", headers, body, url=url).scheme == "twilio"


# Accepted deliveries ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", ALL)
def test_verify_fresh_signature_reports_scheme_timestamp_and_index(scheme: str) -> None:
    body = _body(scheme)

    result = _verify(scheme, _sign(scheme, body), body)

    assert result.scheme == scheme
    assert result.secret_index == 0
    assert result.timestamp == (NOW if scheme in TIMED else None)


@pytest.mark.parametrize("scheme", ALL)
@pytest.mark.parametrize("case", [str.upper, str.lower, str.title], ids=str)
def test_verify_header_names_in_any_case_are_accepted(
    scheme: str, case: Callable[[str], str]
) -> None:
    body = _body(scheme)
    headers = {case(name): value for name, value in _sign(scheme, body).items()}

    assert _verify(scheme, headers, body).scheme == scheme


@pytest.mark.parametrize("scheme", ALL)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param("Grüße, 東京 🚀".encode(), id="non-ascii"),
        pytest.param(bytes(range(256)), id="binary"),
    ],
)
def test_verify_signed_unusual_body_is_accepted(scheme: str, body: bytes) -> None:
    assert _verify(scheme, _sign(scheme, body), body).secret_index == 0


@pytest.mark.parametrize("scheme", ALL)
def test_verify_rotation_second_secret_matches_with_index_one(scheme: str) -> None:
    body = _body(scheme)
    current, old = SECRETS[scheme]

    result = _verify(scheme, _sign(scheme, body), body, secrets=[old, current])

    assert result.secret_index == 1


def _two_signatures(scheme: str, body: bytes) -> dict[str, str]:
    """Headers carrying the old secret's signature first, then the current one's."""
    old = _sign(scheme, body, secret=SECRETS[scheme][1])
    new = _sign(scheme, body)
    name = SIGNATURE_HEADER[scheme]
    if scheme in ("standard-webhooks", "svix"):
        return {**new, name: f"{old[name]} {new[name]}"}

    separator = "," if scheme == "stripe" else ";"
    second = new[name].split(separator, 1)[1]
    return {**new, name: f"{old[name]}{separator}{second}"}


@pytest.mark.parametrize("scheme", ["standard-webhooks", "svix", "stripe", "paddle"])
def test_verify_rotation_only_second_signature_matches(scheme: str) -> None:
    """During a secret roll the provider sends two signatures; the second matches."""
    body = _body(scheme)

    result = _verify(scheme, _two_signatures(scheme, body), body)

    assert result.secret_index == 0


def test_verify_svix_accepts_unbranded_headers() -> None:
    """Svix's libraries also accept webhook-* names; so does the svix scheme."""
    headers = sign("standard-webhooks", SECRETS["svix"][0], JSON_BODY, timestamp=NOW)

    assert verify("svix", SECRETS["svix"][0], headers, JSON_BODY, now=NOW).scheme


def test_verify_stripe_ignores_extra_v0_entry() -> None:
    headers = _sign("stripe", JSON_BODY)
    headers["Stripe-Signature"] += ",v0=" + "0" * 64

    assert _verify("stripe", headers, JSON_BODY).timestamp == NOW


@pytest.mark.parametrize(
    ("scheme", "id_header"),
    [
        ("github", "X-GitHub-Delivery"),
        ("shopify", "X-Shopify-Webhook-Id"),
        ("twilio", "I-Twilio-Idempotency-Token"),
        ("standard-webhooks", "webhook-id"),
    ],
)
def test_verify_returns_provider_delivery_id(scheme: str, id_header: str) -> None:
    body = _body(scheme)
    headers = _sign(scheme, body)

    assert headers[id_header] == "msg_0001"
    assert _verify(scheme, headers, body).event_id == "msg_0001"


@pytest.mark.parametrize(
    ("scheme", "tolerance"),
    [("standard-webhooks", 300), ("svix", 300), ("stripe", 300), ("slack", 300)]
    + [("paddle", 5)],
)
def test_verifier_default_tolerance_is_the_providers(
    scheme: str, tolerance: float
) -> None:
    verifier = Verifier(scheme, SECRETS[scheme][0])
    headers = _sign(scheme, _body(scheme))

    assert verifier.tolerance == tolerance
    assert verifier.verify(headers, _body(scheme), now=NOW + tolerance).timestamp
    with pytest.raises(TimestampOutOfTolerance):
        verifier.verify(headers, _body(scheme), now=NOW + tolerance + 1)


# Refusals --------------------------------------------------------------------------


def _tampered(scheme: str) -> tuple[dict[str, str], bytes]:
    body = _body(scheme)
    return _sign(scheme, body), body.replace(b"1", b"2", 1)


def _reserialised(scheme: str) -> tuple[dict[str, str], bytes]:
    body = JSON_BODY
    spaced = json.dumps(json.loads(body), ensure_ascii=False, indent=1).encode()
    return _sign(scheme, body), spaced


def _escaped(scheme: str) -> tuple[dict[str, str], bytes]:
    """The same JSON with non-ASCII characters written as \\u escapes."""
    body = JSON_BODY
    return _sign(scheme, body), json.dumps(json.loads(body)).encode()


def _emptied(scheme: str) -> tuple[dict[str, str], bytes]:
    return _sign(scheme, _body(scheme)), b""


def _wrong_secret(scheme: str) -> tuple[dict[str, str], bytes]:
    body = _body(scheme)
    return _sign(scheme, body, secret=SECRETS[scheme][1]), body


def _without(name: str) -> Callable[[str], tuple[dict[str, str], bytes]]:
    def build(scheme: str) -> tuple[dict[str, str], bytes]:
        body = _body(scheme)
        headers = _sign(scheme, body)
        return {k: v for k, v in headers.items() if k.lower() != name.lower()}, body

    return build


def _garbled(scheme: str) -> tuple[dict[str, str], bytes]:
    body = _body(scheme)
    return {**_sign(scheme, body), SIGNATURE_HEADER[scheme]: "garbage!"}, body


BASIC_REFUSALS = [
    pytest.param(_tampered, SignatureMismatch, id="tampered-body"),
    pytest.param(_wrong_secret, SignatureMismatch, id="wrong-secret"),
    pytest.param(_reserialised, SignatureMismatch, id="json-respaced"),
    pytest.param(_escaped, SignatureMismatch, id="json-unicode-escaped"),
    pytest.param(_emptied, SignatureMismatch, id="empty-body"),
    pytest.param(_garbled, MalformedHeader, id="malformed-signature"),
]


@pytest.mark.parametrize("scheme", ALL)
@pytest.mark.parametrize(("build", "error"), BASIC_REFUSALS)
def test_verify_bad_delivery_raises_named_error_revealing_nothing(
    scheme: str,
    build: Callable[[str], tuple[dict[str, str], bytes]],
    error: type[SignatureError],
) -> None:
    """Each refusal has its own class, names a header and quotes no secret."""
    headers, body = build(scheme)
    if scheme == "twilio" and build in (_reserialised, _escaped):
        headers, body = _sign(scheme, FORM_BODY), FORM_BODY.replace(b"+", b"++")

    with pytest.raises(error) as caught:
        _verify(scheme, headers, body)

    _assert_reveals_nothing(scheme, caught.value, body)


@pytest.mark.parametrize("scheme", ALL)
def test_verify_missing_signature_header_raises_missing_header(scheme: str) -> None:
    headers, body = _without(SIGNATURE_HEADER[scheme])(scheme)

    with pytest.raises(MissingHeader, match=f"(?i){SIGNATURE_HEADER[scheme]}"):
        _verify(scheme, headers, body)


@pytest.mark.parametrize("scheme", sorted(TIMESTAMP_HEADER))
def test_verify_missing_timestamp_header_raises_missing_header(scheme: str) -> None:
    headers, body = _without(TIMESTAMP_HEADER[scheme])(scheme)

    with pytest.raises(MissingHeader, match=f"(?i){TIMESTAMP_HEADER[scheme]}"):
        _verify(scheme, headers, body)


@pytest.mark.parametrize("scheme", TIMED)
@pytest.mark.parametrize(
    ("offset", "word"), [(1, "old"), (-1, "in the future")], ids=["stale", "future"]
)
def test_verify_timestamp_outside_window_is_refused_both_ways(
    scheme: str, offset: int, word: str
) -> None:
    """Too old and too far ahead are both refused, even where an SDK checks one."""
    body = _body(scheme)
    window = get_scheme(scheme).default_tolerance or 0
    now = NOW + offset * (window + 1)

    with pytest.raises(TimestampOutOfTolerance, match=word) as caught:
        _verify(scheme, _sign(scheme, body), body, now=now)

    _assert_reveals_nothing(scheme, caught.value, body)


@pytest.mark.parametrize(
    ("scheme", "value"),
    [
        ("stripe", "t=1750000000;v1=" + "a" * 64),
        ("stripe", "v1=" + "a" * 64),
        ("stripe", "t=soon,v1=" + "a" * 64),
        ("stripe", "t=1750000000,v1=" + "A" * 64),
        ("paddle", "ts=1750000000,h1=" + "a" * 64),
        ("paddle", "ts=1750000000;h1=dummy"),
        ("slack", "v1=" + "a" * 64),
        ("github", "sha256=" + "a" * 40),
        ("github", "sha1=" + "a" * 64),
        ("shopify", "qhOj_gBNCGN_L7zyCREwbScekZNWLvFBMXPf725rixw="),
        ("standard-webhooks", "v1=abc"),
        ("standard-webhooks", "v1,"),
        ("twilio", "not base64!"),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else value,
)
def test_verify_malformed_signature_header_is_refused(scheme: str, value: str) -> None:
    body = _body(scheme)
    headers = {**_sign(scheme, body), SIGNATURE_HEADER[scheme]: value}

    with pytest.raises(MalformedHeader, match=f"(?i){SIGNATURE_HEADER[scheme]}"):
        _verify(scheme, headers, body)


@pytest.mark.parametrize("value", ["17e8", "-1750000000", "1750000000.5", "١٧٥٠"])
def test_verify_malformed_timestamp_is_refused(value: str) -> None:
    headers = {**_sign("slack", JSON_BODY), "X-Slack-Request-Timestamp": value}

    with pytest.raises(MalformedHeader, match="integer unix seconds"):
        _verify("slack", headers, JSON_BODY)


def test_verify_stripe_v0_only_is_refused() -> None:
    """Stripe docs: only v1 is a live signature; accepting v0 would allow downgrade."""
    signed = _sign("stripe", JSON_BODY)["Stripe-Signature"].replace("v1=", "v0=")

    with pytest.raises(SignatureMismatch, match="no v1"):
        _verify("stripe", {"Stripe-Signature": signed}, JSON_BODY)


def test_verify_stripe_key_is_not_base64_decoded() -> None:
    """A Standard Webhooks signer (decoded whsec_ key) does not pass as Stripe."""
    secret = SECRETS["standard-webhooks"][0]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{NOW}.".encode() + JSON_BODY, "sha256").hexdigest()

    with pytest.raises(SignatureMismatch):
        verify(
            "stripe",
            secret,
            {"Stripe-Signature": f"t={NOW},v1={digest}"},
            JSON_BODY,
            now=NOW,
        )


def test_verify_twilio_json_changed_body_is_refused_by_body_hash() -> None:
    headers = _sign("twilio-json", JSON_BODY)
    url = url_with_body_hash(URL, JSON_BODY)

    with pytest.raises(SignatureMismatch, match="bodySHA256"):
        verify("twilio-json", SECRETS["twilio-json"][0], headers, b"{}", url=url)


def test_verify_twilio_json_url_without_body_hash_is_refused() -> None:
    secret = SECRETS["twilio-json"][0]
    digest = hmac.new(secret.encode(), URL.encode(), "sha1").digest()
    headers = {"X-Twilio-Signature": base64.b64encode(digest).decode()}

    with pytest.raises(SignatureMismatch, match="no bodySHA256"):
        verify("twilio-json", secret, headers, JSON_BODY, url=URL)


@pytest.mark.parametrize("scheme", URL_SCHEMES)
def test_verify_url_scheme_without_url_raises_config_error(scheme: str) -> None:
    headers = _sign(scheme, _body(scheme))

    with pytest.raises(ConfigError, match="needs that URL"):
        verify(scheme, SECRETS[scheme][0], headers, _body(scheme))


@pytest.mark.parametrize("scheme", URL_SCHEMES)
def test_verify_url_scheme_other_url_is_refused(scheme: str) -> None:
    body = _body(scheme)
    other = (_url(scheme, body) or "").replace("acme", "acne")

    with pytest.raises(SignatureMismatch):
        verify(
            scheme, SECRETS[scheme][0], _sign(scheme, body), body, url=other, now=NOW
        )


def _assert_reveals_nothing(scheme: str, error: SignatureError, body: bytes) -> None:
    message = f"{error} {error!r}"
    assert error.header.lower() in message.lower()  # type: ignore[attr-defined]
    for secret in SECRETS[scheme]:
        assert secret not in message
        assert secret.removeprefix("whsec_") not in message

    expected = _sign(scheme, body)[SIGNATURE_HEADER[scheme]]
    for token in re.split(r"[ ,;=]", expected):
        assert len(token) < 16 or token not in message
    if len(body) >= 16:
        assert body.decode("utf-8", "replace") not in message


# The generic plain HMAC -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "header"),
    [
        ({}, "X-Signature"),
        ({"algorithm": "sha1", "encoding": "base64"}, "X-Signature"),
        (
            {"header": "Typeform-Signature", "encoding": "base64", "prefix": "sha256="},
            "Typeform-Signature",
        ),
        (
            {"header": "X-Hook-Sig", "algorithm": "sha512", "prefix": "v1:"},
            "X-Hook-Sig",
        ),
    ],
    ids=["default", "sha1-base64", "typeform-like", "sha512-prefixed"],
)
def test_plain_hmac_signs_what_hmac_computes_and_verifies_it(
    options: dict[str, str], header: str
) -> None:
    scheme = PlainHmac(**options)
    digest = hmac.new(b"s3cret", JSON_BODY, options.get("algorithm", "sha256"))
    encoded = (
        base64.b64encode(digest.digest()).decode()
        if options.get("encoding") == "base64"
        else digest.hexdigest()
    )

    headers = sign(scheme, "s3cret", JSON_BODY)

    assert headers == {header: options.get("prefix", "") + encoded}
    assert verify(scheme, "s3cret", headers, JSON_BODY).scheme == "hmac"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"algorithm": "md5"}, "algorithm must be one of sha1, sha256, sha512"),
        ({"encoding": "base32"}, "encoding must be one of hex, base64"),
        ({"header": "X Signature"}, "plain HTTP header name"),
        ({"header": ""}, "plain HTTP header name"),
    ],
    ids=["md5", "base32", "space-in-header", "empty-header"],
)
def test_plain_hmac_bad_configuration_raises_config_error(
    options: dict[str, str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        PlainHmac(**options)


def test_plain_hmac_prefix_missing_is_malformed() -> None:
    scheme = PlainHmac(prefix="sha256=")
    digest = hmac.new(b"k", JSON_BODY, "sha256").hexdigest()

    with pytest.raises(MalformedHeader, match="must start with 'sha256='"):
        verify(scheme, "k", {"X-Signature": digest}, JSON_BODY)


@pytest.mark.parametrize("scheme", ALL)
def test_verifier_empty_secret_raises_config_error(scheme: str) -> None:
    with pytest.raises(ConfigError, match="must not be empty"):
        Verifier(scheme, "whsec_" if scheme in ("standard-webhooks", "svix") else "")


def test_schemes_lists_every_provider_scheme() -> None:
    assert schemes() == sorted(ALL)


# Properties ------------------------------------------------------------------------

BYTE_SCHEMES = [scheme for scheme in ALL if scheme != "twilio"]


@given(
    scheme=st.sampled_from(BYTE_SCHEMES),
    body=st.binary(max_size=300),
    position=st.integers(min_value=0),
    change=st.integers(min_value=1, max_value=255),
)
def test_sign_then_verify_round_trips_and_any_body_byte_change_fails(
    scheme: str, body: bytes, position: int, change: int
) -> None:
    """Any body verifies after signing; changing any one byte of it is refused."""
    headers = _sign(scheme, body)
    assert _verify(scheme, headers, body).secret_index == 0

    if body:
        index = position % len(body)
        changed = body[:index] + bytes([body[index] ^ change]) + body[index + 1 :]
        with pytest.raises(SignatureError):
            _verify(scheme, headers, changed)


@given(
    scheme=st.sampled_from(ALL),
    position=st.integers(min_value=0),
    change=st.integers(min_value=1, max_value=127),
)
def test_verify_any_signature_character_change_fails(
    scheme: str, position: int, change: int
) -> None:
    """Changing any one ASCII character of the signature header is refused."""
    body = _body(scheme)
    headers = _sign(scheme, body)
    value = headers[SIGNATURE_HEADER[scheme]]
    index = position % len(value)
    changed = value[:index] + chr(ord(value[index]) ^ change) + value[index + 1 :]

    with pytest.raises(SignatureError):
        _verify(scheme, {**headers, SIGNATURE_HEADER[scheme]: changed}, body)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@given(
    params=st.lists(st.tuples(_TEXT.filter(bool), _TEXT), min_size=1, max_size=6),
    position=st.integers(min_value=0),
)
def test_twilio_round_trips_and_any_parameter_change_fails(
    params: list[tuple[str, str]], position: int
) -> None:
    """Twilio signs decoded parameters, so the property is stated over them."""
    from urllib.parse import urlencode

    body = urlencode(params).encode()
    headers = _sign("twilio", body)
    assert _verify("twilio", headers, body).secret_index == 0

    name, value = params[position % len(params)]
    changed = [(n, v + "x") if (n, v) == (name, value) else (n, v) for n, v in params]
    with pytest.raises(SignatureMismatch):
        _verify("twilio", headers, urlencode(changed).encode())


@given(
    key=st.binary(max_size=200),
    message=st.binary(max_size=300),
    algorithm=st.sampled_from(["sha1", "sha256", "sha512"]),
)
def test_hmac_digest_equals_standard_library(
    key: bytes, message: bytes, algorithm: str
) -> None:
    """The primed-state HMAC gives what hmac.digest gives, for keys of any length."""
    half = len(message) // 2

    assert hmac_digest(key, algorithm, message[:half], message[half:]) == hmac.digest(
        key, message, algorithm
    )


def test_zendesk_signs_its_timestamp_header_then_the_body() -> None:
    """Zendesk docs: base64(HMACSHA256(TIMESTAMP + BODY)), the header's exact text."""
    secret = SECRETS["zendesk"][0]
    stamp = "2025-06-15T15:06:40Z"  # NOW as Zendesk writes it
    digest = hmac.new(secret.encode(), stamp.encode() + JSON_BODY, "sha256").digest()

    assert _sign("zendesk", JSON_BODY) == {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


@pytest.mark.parametrize(
    "value",
    [
        "1750000000",
        "2025-06-15 14:13:20",
        "2025-06-15T14:13:20+00:00",
        "2025-13-45T01:02:03Z",
    ],
)
def test_verify_zendesk_timestamp_not_iso_utc_is_refused(value: str) -> None:
    headers = {**_sign("zendesk", JSON_BODY), TIMESTAMP_HEADER["zendesk"]: value}

    with pytest.raises(MalformedHeader, match="ISO 8601 UTC time"):
        _verify("zendesk", headers, JSON_BODY)


@pytest.mark.parametrize(
    "value",
    ["\u0662\u0660\u0662\u0665-06-15T15:06:40Z"],  # Arabic-Indic digits
)
def test_verify_zendesk_timestamp_takes_ascii_digits_only(value: str) -> None:
    headers = {**_sign("zendesk", JSON_BODY), TIMESTAMP_HEADER["zendesk"]: value}

    with pytest.raises(MalformedHeader, match="ISO 8601 UTC time"):
        _verify("zendesk", headers, JSON_BODY)


@pytest.mark.parametrize("value", ["1750000000000.5", "-1750000000000", "17e11", "now"])
def test_verify_hubspot_timestamp_not_milliseconds_is_refused(value: str) -> None:
    headers = {**_sign("hubspot", JSON_BODY), TIMESTAMP_HEADER["hubspot"]: value}

    with pytest.raises(MalformedHeader, match="integer unix milliseconds"):
        _verify("hubspot", headers, JSON_BODY)


def test_verify_hubspot_v2_delivery_under_v1_scheme_names_the_right_scheme() -> None:
    """HubSpot says which legacy version it sent; the refusal says what to configure."""
    headers = _sign("hubspot-v2", JSON_BODY)

    with pytest.raises(SignatureMismatch, match="configure scheme 'hubspot-v2'"):
        _verify("hubspot-v1", headers, JSON_BODY)


def test_verify_hubspot_legacy_unknown_version_is_refused_without_suggesting_it() -> (
    None
):
    headers = {**_sign("hubspot-v1", JSON_BODY), "X-HubSpot-Signature-Version": "v9"}

    with pytest.raises(SignatureMismatch, match="HubSpot sends only v1 or v2 there"):
        _verify("hubspot-v1", headers, JSON_BODY)


def test_verify_hubspot_legacy_without_version_header_is_checked_as_configured() -> (
    None
):
    headers = _sign("hubspot-v1", JSON_BODY)
    del headers["X-HubSpot-Signature-Version"]

    assert _verify("hubspot-v1", headers, JSON_BODY).scheme == "hubspot-v1"
