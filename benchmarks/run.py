"""Run every benchmark: ``make bench``.

Each ``benchmarks/bench_*.py`` has a ``main() -> None`` that measures hooklab and its
baseline side by side in the same run and prints their ratio against the target.
Name one or more benchmarks to run only those: ``python benchmarks/run.py signing``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Run the named benchmarks, or all of them, one after another."""
    wanted = sys.argv[1:]
    found = sorted(HERE.glob("bench_*.py"))
    chosen = [p for p in found if not wanted or p.stem.removeprefix("bench_") in wanted]
    if not chosen:
        sys.exit(f"no benchmark matches {wanted}; have: {[p.stem for p in found]}")

    for path in chosen:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {path.stem}", flush=True)
        start = time.perf_counter()
        module.main()
        print(f"   ({time.perf_counter() - start:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main()
