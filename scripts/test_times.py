"""Seconds per test file from pytest's JUnit report, slowest first.

    .venv/bin/python -m pytest tests --ignore=tests/attributes --junitxml=runs/vision.xml
    python3 scripts/test_times.py runs/vision.xml

Each line: total seconds of the file's tests (set-up and tear-down included, as pytest records
them), the number of tests, the file. The last line is the sum.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def file_totals(report: str) -> dict[str, tuple[float, int]]:
    """``{file: (seconds, tests)}`` from a JUnit XML report written by ``pytest --junitxml``."""
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for case in ET.parse(report).iter("testcase"):
        name = case.get("classname", "").replace(".", "/") + ".py"
        seconds[name] += float(case.get("time", 0))
        counts[name] += 1
    return {name: (seconds[name], counts[name]) for name in seconds}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 scripts/test_times.py REPORT.xml", file=sys.stderr)
        return 2
    totals = sorted(file_totals(argv[0]).items(), key=lambda item: -item[1][0])
    for name, (seconds, tests) in totals:
        print(f"{seconds:8.1f} s {tests:4d} tests  {name}")
    print(f"{sum(s for s, _ in dict(totals).values()):8.1f} s {sum(n for _, n in dict(totals).values()):4d} tests  total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
