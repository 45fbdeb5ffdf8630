"""The exceptions hooklab raises, rooted in one class.

The tree, each level something a caller may want to catch::

    HooklabError
    ├── ConfigError            an engagement file or option is wrong (user mistake)
    ├── SignatureError         a webhook delivery was refused (hooklab.signing)
    ├── LedgerError            the ledger cannot store or read an event
    ├── ApiError               a provider API call failed after its retries
    └── NotebookRunError       a chapter failed or cannot be run (hooklab.report)
        └── ChapterError       a chapter folder or notebook is unusable (also a
                               ConfigError: the user pointed at the wrong thing)

Messages are whole sentences that name the file, field or header concerned and what
was expected. They never contain a secret value, an expected signature or a raw body.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ChapterError",
    "ConfigError",
    "HooklabError",
    "LedgerError",
    "NotebookRunError",
    "SignatureError",
]


class HooklabError(Exception):
    """Root of every error hooklab raises on purpose."""


class ConfigError(HooklabError, ValueError):
    """An engagement file, option or argument is not what hooklab expects."""


class SignatureError(HooklabError):
    """A webhook delivery failed verification; subclasses say why."""


class LedgerError(HooklabError):
    """The ledger could not store or read an event.

    ``per_item`` is true when the failure may lie in one item's content (a value
    the store cannot hold) rather than in the store itself (locked, closed, disk
    full), so a batch is worth retrying one item at a time.
    """

    def __init__(self, message: str, *, per_item: bool = False) -> None:
        super().__init__(message)
        self.per_item = per_item


class ApiError(HooklabError):
    """A provider API call failed for good (after any retries)."""


class NotebookRunError(HooklabError):
    """A notebook chapter could not be run, or failed while running."""


class ChapterError(NotebookRunError, ConfigError):
    """A chapter folder or notebook cannot be used: none found, unreadable, untagged.

    A NotebookRunError for callers of ``hooklab.report``, and a ConfigError because
    it is the user's mistake, so the command exits 2 as for any other bad option.
    """
