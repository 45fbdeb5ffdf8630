"""hooklab: a workbench for designing and auditing webhook and API integrations."""

__version__ = "0.1.0"
