"""bench/decide.py runs end to end at small sizes and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report


pytest.importorskip("casbin", reason="the benchmark compares against pycasbin (the `bench` extra)")


@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("decide.py")


def test_last_line_is_the_throughput_ratio(report):
    assert re.fullmatch(r"ratio \d+\.\d", report.splitlines()[-1])


def test_both_engines_report_throughput_median_and_p99(report):
    for engine in ("mcp-acl decide", "pycasbin FastEnforcer"):
        (row,) = [line for line in report.splitlines() if line.startswith(engine + " ")]
        assert re.fullmatch(rf"{re.escape(engine)}\s+[\d,]+\s+\d+\.\d\s+\d+\.\d", row)


def test_engines_agree_on_every_plain_rbac_question(report):
    found = re.search(r"agreement on plain-RBAC questions: ([\d,]+)/([\d,]+) \(100\.0%\)", report)
    assert found and found.group(1) == found.group(2) and found.group(1) != "0"


def test_growth_tables_list_three_sizes_each(report):
    rows = re.findall(r"^\s*[\d,]+\s+[\d,]+\s+([\d,]+)\s+\d+\.\d\d\s+[\d,]+\s+\d+\.\d\s+\d+\.\d$", report, re.MULTILINE)
    assert rows == ["20", "200", "2,000"] * 2


def test_the_quota_step_is_reported_beside_decide(report):
    assert re.search(r"^quotas: a limit on every tenth allow \([\d,]+ grants\); [\d,]+ of [\d,]+ questions are counted$", report, re.MULTILINE)
    for label in ("decide", "decide + quota step"):
        assert re.search(rf"^{re.escape(label)}\s+[\d,]+\s+\d+\.\d\s+\d+\.\d$", report, re.MULTILINE), label
