"""hooklab: a workbench for designing and auditing webhook and API integrations.

The names here are the stable surface; the modules below group them by job:
``hooklab.spec`` (engagement files), ``hooklab.signing`` (sign and verify),
``hooklab.studies`` (what the notebooks call) and ``hooklab.report`` (the audit).
"""

from hooklab.errors import (
    ApiError,
    ConfigError,
    HooklabError,
    LedgerError,
    NotebookRunError,
    SignatureError,
)
from hooklab.signing import Verifier, sign, verify
from hooklab.spec import Engagement, load_engagement

__version__ = "0.1.0"

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
