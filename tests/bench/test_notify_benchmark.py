"""bench/notify.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report



@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("notify.py")


def test_last_line_is_the_ratio_of_listen_over_get_stream(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_both_eras_are_timed_on_both_servers(report):
    for server in ("signalled", "poll only"):
        for stream in ("GET stream", "listen"):
            (row,) = [line for line in report.splitlines() if line.startswith(f"{server:<10} {stream:<11}")]
            assert re.fullmatch(r".{22}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d", row)
