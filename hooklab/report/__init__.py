"""The headless side of the workbook: run the chapters, assemble the report."""

from hooklab.report.html import build_report
from hooklab.report.results import (
    LAB_SIZES,
    chapter_output_dir,
    check_parameters,
    load_results,
    save_results,
)
from hooklab.report.runner import KERNEL_NAME, AuditResult, run_audit

__all__ = [
    "KERNEL_NAME",
    "LAB_SIZES",
    "AuditResult",
    "build_report",
    "chapter_output_dir",
    "check_parameters",
    "load_results",
    "run_audit",
    "save_results",
]
