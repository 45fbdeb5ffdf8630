"""The ``hooklab`` command: argument parsing and exit codes only.

Each module here adds the commands of one job to the ``main`` group:
``workbook`` (audit, check), ``studies`` (simulate), ``runtime`` (serve,
replay, ledger). Exit codes: 0 success, 1 the work failed (a chapter, a refused
delivery), 2 a usage or input mistake (a bad option, an invalid file).
"""

from hooklab.cli import (  # noqa: F401  (registers their commands)
    pull,
    runtime,
    signing,
    studies,
    workbook,
)
from hooklab.cli._app import main

__all__ = ["main"]
