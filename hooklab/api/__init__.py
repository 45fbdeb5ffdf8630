"""The pull side: a provider API client that survives real provider APIs.

``Client`` (sync) and ``AsyncClient`` (async) share one behaviour:

- auth: ``ApiKey`` (header or query), ``BearerToken``, ``OAuth2`` (client
  credentials or refresh tokens, refreshed before expiry and once on a 401, one
  refresh in flight at a time);
- explicit connect and read timeouts (``DEFAULT_TIMEOUT``);
- retries (``RetryPolicy``) with exponential backoff and full jitter on connection
  errors, timeouts, 429 and 5xx, for idempotent methods, and for a POST only when
  it carries an Idempotency-Key (``idempotent=True`` makes one per logical request,
  reused across its retries);
- Retry-After in both forms, ``X-RateLimit-*`` and Shopify's call-limit header,
  and a client-side ``TokenBucket`` (``rate_limit=``);
- pagination styles ``Cursor``, ``NextLink``, ``LinkHeader``, ``PageNumber`` and
  ``Offset``, walked by one iterator (``items``) that raises rather than stop early;
- a call log (``calls``: one ``CallRecord`` per attempt) for the audit.

Errors, each carrying the request (and the answer, if one came)::

    ApiError (hooklab.errors)
    └── ApiRequestError        the request failed for good, after its retries
        ├── ApiResponseError   an answer came but is not what the API promises
        └── ApiAuthError       the token endpoint refused or could not be reached
"""

from hooklab.api._auth import ApiKey, Auth, BearerToken, Credentials, OAuth2
from hooklab.api._client import AsyncClient, Client
from hooklab.api._core import DEFAULT_TIMEOUT, CallRecord
from hooklab.api._errors import ApiAuthError, ApiRequestError, ApiResponseError
from hooklab.api._limits import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    RetryPolicy,
    TokenBucket,
    header_pause_s,
    retry_after_s,
)
from hooklab.api._pagination import (
    Cursor,
    LinkHeader,
    NextLink,
    Offset,
    Page,
    PageNumber,
    Paginator,
    parse_link_header,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "ApiAuthError",
    "ApiKey",
    "ApiRequestError",
    "ApiResponseError",
    "AsyncClient",
    "Auth",
    "BearerToken",
    "CallRecord",
    "Client",
    "Credentials",
    "Cursor",
    "LinkHeader",
    "NextLink",
    "OAuth2",
    "Offset",
    "Page",
    "PageNumber",
    "Paginator",
    "RetryPolicy",
    "TokenBucket",
    "header_pause_s",
    "parse_link_header",
    "retry_after_s",
]
