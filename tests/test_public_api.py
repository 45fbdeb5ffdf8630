"""The package's top-level surface stays small, sorted and importable."""

from __future__ import annotations

import hooklab


def test_all_is_sorted_and_every_name_exists():
    assert hooklab.__all__ == sorted(hooklab.__all__)
    missing = [name for name in hooklab.__all__ if not hasattr(hooklab, name)]
    assert missing == []


def test_every_error_is_a_hooklab_error():
    errors = [
        getattr(hooklab, name) for name in hooklab.__all__ if name.endswith("Error")
    ]
    assert len(errors) == 6
    assert all(issubclass(error, hooklab.HooklabError) for error in errors)


def test_config_error_is_also_a_value_error():
    """Callers that catch ValueError for bad input keep working."""
    assert issubclass(hooklab.ConfigError, ValueError)
