"""bench/cli.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report



@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("cli.py")


def test_last_line_is_the_ratio_of_medians(report):
    assert re.fullmatch(r"ratio \d+\.\d", report.splitlines()[-1])


def test_every_command_and_the_baseline_have_a_median(report):
    for name in ("python -c pass", "mcp-acl --help", "mcp-acl check", "mcp-acl grant", "mcp-acl revoke"):
        (row,) = [line for line in report.splitlines() if line.startswith(name + " ")]
        assert re.fullmatch(rf"{re.escape(name)}\s+\d+\s+\d+\s+\d+", row)
