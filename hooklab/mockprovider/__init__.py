"""A mock SaaS provider on loopback, to test the pull side against a real server.

``MockProvider`` serves events, orders and invoices in several pagination styles,
behind an optional OAuth 2.0 token endpoint (``OAuthConfig``) and rate limit
(``RateLimit``), with misbehaviour injected at random (``ApiFaults``) or one
request at a time (``MockProvider.inject``); it pushes the same events as signed
webhooks through ``hooklab.sender``. See ``hooklab.mockprovider._provider`` for
the endpoints.
"""

from hooklab.mockprovider._guards import ApiFaults, Fault, OAuthConfig, RateLimit
from hooklab.mockprovider._provider import (
    MAX_PAGE_SIZE,
    ApiHit,
    MockProvider,
    webhook_body,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "ApiFaults",
    "ApiHit",
    "Fault",
    "MockProvider",
    "OAuthConfig",
    "RateLimit",
    "webhook_body",
]
