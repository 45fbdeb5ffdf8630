"""hooklab: a workbench for designing and auditing webhook and API integrations.

The names here are the stable surface; the modules below group them by job:
``hooklab.spec`` (engagement files), ``hooklab.signing`` (sign and verify),
``hooklab.studies`` (what the notebooks call) and ``hooklab.report`` (the audit).
"""

from typing import TYPE_CHECKING, Any

from hooklab.errors import (
    ApiError,
    ConfigError,
    HooklabError,
    LedgerError,
    NotebookRunError,
    SignatureError,
)
from hooklab.signing import Verifier, sign, verify

if TYPE_CHECKING:
    from hooklab.spec import Engagement, load_engagement

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Engagement and load_engagement, imported when first asked for: the spec
    needs pydantic, which a process that only stores deliveries (the ledger
    writer) would otherwise load for nothing."""
    if name in ("Engagement", "load_engagement"):
        from hooklab import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'hooklab' has no attribute {name!r}")


__all__ = [
    "ApiError",
    "ConfigError",
    "Engagement",
    "HooklabError",
    "LedgerError",
    "NotebookRunError",
    "SignatureError",
    "Verifier",
    "__version__",
    "load_engagement",
    "sign",
    "verify",
]
