"""bench/personal_token.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report


@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("personal_token.py")


def test_last_line_is_the_ratio_of_medians(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_every_kind_reports_median_and_p99_quiet_and_after_a_commit(report):
    for condition in ("quiet", "after a commit"):
        for kind in ("jwt", "personal", "personal, worker thread"):
            label = f"{kind}, {condition}"
            (row,) = [line for line in report.splitlines() if line.startswith(label + " ")]
            assert re.fullmatch(rf"{re.escape(label)}\s+median\s+\d+\.\d µs\s+p99\s+\d+\.\d µs", row)
