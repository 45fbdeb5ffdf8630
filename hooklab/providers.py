"""How real providers deliver webhooks: retry schedules, timeouts and give-up times.

Each ``ProviderPreset`` holds the published facts the sender simulates, with the
pages they come from and the date they were collected. A value the provider does
not publish is None, and ``notes`` says what is known instead; hooklab never fills
such a gap with a guess. The facts were gathered for hooklab's shared data set
(``provider_presets.json``, as of 2026-12-04) from the source URLs listed here.

``retry_delays_s`` are the waits before each retry, after an immediate first
attempt; ``()`` means the provider does not retry on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hooklab.errors import ConfigError

__all__ = ["PRESETS", "ProviderPreset", "preset"]

AS_OF = "2026-12-04"


@dataclass(frozen=True)
class ProviderPreset:
    """One provider's documented delivery behaviour (None: not published)."""

    provider: str
    scheme: str | None
    retry_delays_s: tuple[float, ...] | None
    max_attempts: int | None
    give_up_after_s: float | None
    response_timeout_s: float | None
    disable_rule: str | None
    sources: tuple[str, ...]
    notes: Mapping[str, str] = field(default_factory=dict)
    as_of: str = AS_OF


_PRESETS = (
    ProviderPreset(
        provider="stripe",
        scheme="stripe",
        retry_delays_s=None,
        max_attempts=None,
        give_up_after_s=259_200,
        response_timeout_s=None,
        disable_rule=(
            "Retries of an event stop if its endpoint is disabled or deleted; events "
            "created while it is disabled are not sent later."
        ),
        sources=(
            "https://docs.stripe.com/webhooks/process-undelivered-events",
            "https://stripe.com/docs/workbench/webhooks",
        ),
        notes={
            "retry_delays_s": "Live mode retries with exponential backoff for up to "
            "3 days (sandbox: 3 attempts over a few hours); the delays are not "
            "published.",
            "max_attempts": "Only the 3-day window is published, not a count.",
            "response_timeout_s": "Stripe asks for a quick 2xx but publishes no "
            "number.",
        },
    ),
    ProviderPreset(
        provider="github",
        scheme="github",
        retry_delays_s=(),
        max_attempts=1,
        give_up_after_s=0,
        response_timeout_s=10,
        disable_rule=None,
        sources=(
            "https://docs.github.com/en/webhooks/using-webhooks/"
            "handling-failed-webhook-deliveries",
            "https://docs.github.com/en/webhooks/using-webhooks/"
            "best-practices-for-using-webhooks",
        ),
        notes={
            "retry_delays_s": "No automatic redelivery; a failed delivery is "
            "redelivered by hand or through the REST API within 3 days.",
            "response_timeout_s": "10 s on github.com; 30 s on GitHub Enterprise "
            "Server.",
        },
    ),
    ProviderPreset(
        provider="shopify",
        scheme="shopify",
        retry_delays_s=None,
        max_attempts=None,
        give_up_after_s=14_400,
        response_timeout_s=5,
        disable_rule=(
            "After 8 consecutive failures a subscription made through the Admin API "
            "is deleted."
        ),
        sources=(
            "https://shopify.dev/changelog/updates-to-webhook-retry-mechanism",
            "https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates",
        ),
        notes={
            "retry_delays_s": "8 retries over 4 hours with exponential backoff "
            "(since 2024-09-10); the delays are not published.",
            "max_attempts": "'Retried a total of 8 times' suggests 9 attempts, but "
            "the total is not stated.",
            "response_timeout_s": "5 s in all, 1 s to connect; any non-2xx, even a "
            "redirect, is a failure.",
        },
    ),
    ProviderPreset(
        provider="slack",
        scheme="slack",
        retry_delays_s=(0, 60, 300),
        max_attempts=4,
        give_up_after_s=None,
        response_timeout_s=3,
        disable_rule=(
            "Event subscriptions are limited or disabled when fewer than 5% of "
            "deliveries got a 2xx in the past 60 minutes."
        ),
        sources=(
            "https://api.slack.com/events-api",
            "https://docs.slack.dev/reference/events/app_rate_limited/",
        ),
        notes={
            "retry_delays_s": "Approximate: a retry almost at once, then after about "
            "1 and 5 minutes (three retries, four attempts in all). Slack retries "
            "after 3 s even while the first request is still running.",
            "give_up_after_s": "About 6 minutes end to end; no figure is published.",
        },
    ),
    ProviderPreset(
        provider="twilio",
        scheme="twilio",
        retry_delays_s=None,
        max_attempts=2,
        give_up_after_s=15,
        response_timeout_s=15,
        disable_rule=None,
        sources=(
            "https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides",
        ),
        notes={
            "retry_delays_s": "One connection-level retry (rc=1 by default) inside a "
            "15 s budget; no delay is published.",
            "max_attempts": "Applies only to the failure kinds the retry policy "
            "selects.",
        },
    ),
    ProviderPreset(
        provider="svix",
        scheme="svix",
        retry_delays_s=(5, 300, 1800, 7200, 18_000, 36_000, 36_000),
        max_attempts=8,
        give_up_after_s=99_305,
        response_timeout_s=15,
        disable_rule=(
            "An endpoint whose attempts all failed for 5 days is disabled (the clock "
            "starts after repeated failures over at least 12 hours)."
        ),
        sources=("https://docs.svix.com/retries", "https://docs.svix.com/idempotency"),
        notes={
            "give_up_after_s": "The sum of the delays (about 27.6 h), not counting "
            "request time.",
        },
    ),
    ProviderPreset(
        provider="hubspot",
        scheme=None,
        retry_delays_s=None,
        max_attempts=None,
        give_up_after_s=None,
        response_timeout_s=None,
        disable_rule=None,
        sources=(
            "https://integrate.hubspot.com/t/what-does-will-retry-mean-when/3953",
        ),
        notes={
            "retry_delays_s": "Up to 10 retries with exponential backoff in a legacy "
            "document; the current schedule is not confirmed.",
            "max_attempts": "Not confirmed.",
            "give_up_after_s": "Not confirmed.",
            "response_timeout_s": "Sources disagree (1 s, 2 s, 5 s).",
        },
    ),
    ProviderPreset(
        provider="zendesk",
        scheme=None,
        retry_delays_s=None,
        max_attempts=None,
        give_up_after_s=None,
        response_timeout_s=None,
        disable_rule=None,
        sources=("https://developer.zendesk.com/api-reference/webhooks/introduction",),
        notes={
            "retry_delays_s": "Some response codes are retried and a circuit breaker "
            "applies; codes and delays are not confirmed.",
            "max_attempts": "Not found.",
            "give_up_after_s": "Not found.",
            "response_timeout_s": "10 s according to a secondary source only.",
        },
    ),
    ProviderPreset(
        provider="square",
        scheme="square",
        retry_delays_s=None,
        max_attempts=None,
        give_up_after_s=259_200,
        response_timeout_s=10,
        disable_rule=(
            "With no 2xx for three weeks Square warns weekly, then disables the "
            "subscription."
        ),
        sources=("https://developer.squareup.com/docs/webhooks/troubleshooting",),
        notes={
            "retry_delays_s": "Retried for up to 72 hours; the delays are not "
            "published.",
            "max_attempts": "Only the retry window is published.",
            "give_up_after_s": "An older revision of the page said 24 hours.",
        },
    ),
)

#: Every preset by provider name.
PRESETS: Mapping[str, ProviderPreset] = MappingProxyType(
    {item.provider: item for item in _PRESETS}
)


def preset(provider: str) -> ProviderPreset:
    """The preset for ``provider``; ConfigError lists the known ones otherwise."""
    try:
        return PRESETS[provider]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(
            f"No delivery preset for provider {provider!r}; known: {known}."
        ) from None
