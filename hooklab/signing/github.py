"""GitHub ("github" and the legacy "github-sha1").

Source: GitHub Docs, "Validating webhook deliveries"
(docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries), whose
"Testing the webhook payload validation" vector tests/test_signing.py reproduces, and
octokit/webhooks-methods.js (sign and verify, and their tests).

- ``X-Hub-Signature-256: sha256=<hex>``: the lower-case hex HMAC-SHA256 of the raw body
  under the webhook secret's UTF-8 bytes. GitHub sends it whenever a secret is set.
- ``X-Hub-Signature: sha1=<hex>``: the legacy HMAC-SHA1 header, still sent alongside
  for old receivers; GitHub advises the SHA-256 one.

The header holds exactly one signature and no timestamp, so a replayed delivery
verifies; deduplicate by ``X-GitHub-Delivery``, which ``verify`` returns as event id.
"""

from __future__ import annotations

from hooklab.signing.plain_hmac import PlainHmac

__all__ = ["SCHEME", "SHA1_SCHEME"]

SCHEME = PlainHmac(
    "github",
    header="X-Hub-Signature-256",
    algorithm="sha256",
    encoding="hex",
    prefix="sha256=",
    id_header="X-GitHub-Delivery",
)

SHA1_SCHEME = PlainHmac(
    "github-sha1",
    header="X-Hub-Signature",
    algorithm="sha1",
    encoding="hex",
    prefix="sha1=",
    id_header="X-GitHub-Delivery",
)
