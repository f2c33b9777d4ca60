"""bench/quota.py runs end to end at small sizes and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report


@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("quota.py")


def test_last_line_is_the_cost_ratio(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_both_admissions_report_throughput_median_and_p99(report):
    for label in ("plain", "quota-checked"):
        (row,) = [line for line in report.splitlines() if line.startswith(label + " ")]
        assert re.fullmatch(rf"{label}\s+[\d,]+\s+\d+\.\d\s+\d+\.\d", row)
    assert re.search(r"^a quota check adds -?\d+\.\d µs \(median\) to an admission$", report, re.MULTILINE)
