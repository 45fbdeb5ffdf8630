"""Tests for hooklab.signing: known-answer vectors, refusals and a round trip."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hooklab.errors import ConfigError
from hooklab.errors import SignatureError as RootSignatureError
from hooklab.signing import (
    MalformedHeader,
    MissingHeader,
    SignatureError,
    SignatureMismatch,
    TimestampOutOfTolerance,
    Verified,
    Verifier,
    schemes,
    sign,
    verify,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VECTORS_FILE = SHARED_DATA / "signature_vectors.json"

SCHEME = "standard-webhooks"
SECRET = "whsec_" + base64.b64encode(b"hooklab-test-key-0123456789abcd").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"hooklab-other-key-9876543210zy").decode()
NOW = 1_750_000_000
BODY = b'{"type":"order.created","data":{"id":1001}}'


def _vectors() -> list[Any]:
    if not VECTORS_FILE.exists():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(reason=f"shared data absent: {VECTORS_FILE}"),
                id="no-shared-data",
            )
        ]

    entries = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    return [pytest.param(entry, id=entry["id"]) for entry in entries]


def _signed(**overrides: Any) -> dict[str, str]:
    options: dict[str, Any] = {"timestamp": NOW, "msg_id": "msg_test0001"}
    options.update(overrides)
    return sign(SCHEME, SECRET, BODY, **options)


@pytest.mark.parametrize("vector", _vectors())
def test_verify_shared_vector_matches_expectation(vector: dict[str, Any]) -> None:
    """Each vector of every scheme is accepted or refused as its source records.

    The file cites each vector's source (a provider document, an SDK test, or
    generated and cross-checked against the providers' SDKs) in its ``source`` field.
    """
    scheme, secret, headers = vector["scheme"], vector["secret"], vector["headers"]
    body = base64.b64decode(vector["body_b64"])
    options = {
        "url": vector["url"],
        "now": vector["now"],
        "tolerance": vector["tolerance_s"],
    }

    if vector["expect"] == "valid":
        result = verify(scheme, secret, headers, body, **options)
        assert result.scheme == scheme
    else:
        with pytest.raises(SignatureError):
            verify(scheme, secret, headers, body, **options)


def test_sign_known_answer_reproduces_published_signature() -> None:
    """Signing the specification library's inputs yields its published signature."""
    headers = sign(
        SCHEME,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        b'{"test": 2432232314}',
        timestamp=1614265330,
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
    )

    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_verify_fresh_signature_returns_verified() -> None:
    result = verify(SCHEME, SECRET, _signed(), BODY, now=NOW)

    assert result == Verified(SCHEME, NOW, 0, event_id="msg_test0001")


def _refusal_cases() -> list[Any]:
    good = _signed()
    return [
        pytest.param(
            good, BODY + b" ", SECRET, NOW, SignatureMismatch, id="tampered-body"
        ),
        pytest.param(
            good, BODY, OTHER_SECRET, NOW, SignatureMismatch, id="wrong-secret"
        ),
        pytest.param(
            good, BODY, SECRET, NOW + 301, TimestampOutOfTolerance, id="stale"
        ),
        pytest.param(
            good, BODY, SECRET, NOW - 301, TimestampOutOfTolerance, id="future"
        ),
        pytest.param(
            {k: v for k, v in good.items() if k != "webhook-id"},
            BODY,
            SECRET,
            NOW,
            MissingHeader,
            id="missing-id",
        ),
        pytest.param(
            {**good, "webhook-signature": "v1=" + good["webhook-signature"][3:]},
            BODY,
            SECRET,
            NOW,
            MalformedHeader,
            id="malformed-signature",
        ),
        pytest.param(
            {**good, "webhook-signature": "v1,!!!not-base64!!!"},
            BODY,
            SECRET,
            NOW,
            MalformedHeader,
            id="signature-not-base64",
        ),
        pytest.param(
            {**good, "webhook-timestamp": "17e8"},
            BODY,
            SECRET,
            NOW,
            MalformedHeader,
            id="malformed-timestamp",
        ),
        pytest.param(
            {**good, "webhook-signature": "v2,AAAA"},
            BODY,
            SECRET,
            NOW,
            SignatureMismatch,
            id="only-unknown-version",
        ),
    ]


@pytest.mark.parametrize(
    ("headers", "body", "secret", "now", "error"), _refusal_cases()
)
def test_verify_bad_delivery_raises_named_error(
    headers: dict[str, str],
    body: bytes,
    secret: str,
    now: int,
    error: type[SignatureError],
) -> None:
    """Each refusal raises its own subclass, naming a header, revealing nothing."""
    with pytest.raises(error) as caught:
        verify(SCHEME, secret, headers, body, now=now)

    message = str(caught.value)
    assert caught.value.header in message  # type: ignore[attr-defined]
    assert SECRET.removeprefix("whsec_") not in message
    assert headers.get("webhook-signature", "v1,")[3:] not in message
    assert _signed()["webhook-signature"][3:] not in repr(caught.value)


def test_verify_rotation_second_secret_matches_with_index_one() -> None:
    result = verify(SCHEME, [OTHER_SECRET, SECRET], _signed(), BODY, now=NOW)

    assert result.secret_index == 1


def test_verify_header_names_in_other_case_are_accepted() -> None:
    shouted = {name.upper(): value for name, value in _signed().items()}

    assert verify(SCHEME, SECRET, shouted, BODY, now=NOW).timestamp == NOW


def test_verify_custom_tolerance_widens_window() -> None:
    result = verify(SCHEME, SECRET, _signed(), BODY, now=NOW + 3600, tolerance=3600)

    assert result.timestamp == NOW


def test_signature_errors_share_hooklab_root() -> None:
    assert SignatureError is RootSignatureError
    assert issubclass(SignatureMismatch, RootSignatureError)


@pytest.mark.parametrize(
    ("scheme", "secrets"),
    [
        pytest.param("no-such-scheme", SECRET, id="unknown-scheme"),
        pytest.param(SCHEME, [], id="no-secret"),
        pytest.param(SCHEME, "whsec_***", id="secret-not-base64"),
    ],
)
def test_verifier_bad_configuration_raises_config_error(
    scheme: str, secrets: str | list[str]
) -> None:
    with pytest.raises(ConfigError):
        Verifier(scheme, secrets)


def test_verifier_repr_hides_secrets() -> None:
    text = repr(Verifier(SCHEME, [SECRET, OTHER_SECRET]))

    assert "whsec_" not in text
    assert "2 hidden" in text


def test_schemes_lists_standard_webhooks() -> None:
    assert SCHEME in schemes()


@given(body=st.binary(max_size=512), position=st.integers(min_value=0))
def test_sign_then_verify_round_trips_and_any_flip_fails(
    body: bytes, position: int
) -> None:
    """Any body verifies after signing; flipping any one byte is refused."""
    verifier = Verifier(SCHEME, SECRET)
    headers = sign(SCHEME, SECRET, body, timestamp=NOW)

    assert verifier.verify(headers, body, now=NOW).secret_index == 0

    if body:
        index = position % len(body)
        flipped = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        with pytest.raises(SignatureMismatch):
            verifier.verify(headers, flipped, now=NOW)


def test_verify_shared_hubspot_v1_vector(shared_data: Path) -> None:
    """The shared folder's one verifiable HubSpot body, with the signature its
    README records: sha256(client secret + body) under HubSpot's placeholder secret."""
    body = (shared_data / "payloads/hubspot/contact.creation.raw.txt").read_bytes()
    headers = {
        "X-HubSpot-Signature": "a1ad12005694524954140b19e8421980f873e4ad014c584a947d1"
        "7f38c4cfc65",
        "X-HubSpot-Signature-Version": "v1",
    }
    secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"

    assert verify("hubspot-v1", secret, headers, body).scheme == "hubspot-v1"
    with pytest.raises(SignatureMismatch):
        verify("hubspot-v1", secret, headers, body.replace(b"123", b"124"))
