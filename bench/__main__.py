"""Run every benchmark: .venv/bin/python -m bench [NAME ...]   (make bench)

Each prints a table of ratios against a baseline measured in the same run; at the end, every
ratio that has a goal (issue 11) is printed again, one row each, with `now` beside its `goal`.
"""

import asyncio
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

from bench.common import GOALS, goals_table


def main() -> None:
    wanted = set(sys.argv[1:])
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if not info.name.endswith("_bench") or (wanted and info.name.removesuffix("_bench") not in wanted):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"\n== {info.name} ==")
        result = module.main()
        if inspect.iscoroutine(result):
            asyncio.run(result)
    if GOALS:
        print()
        goals_table(GOALS)


if __name__ == "__main__":
    main()
