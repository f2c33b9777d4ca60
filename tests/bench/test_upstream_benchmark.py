"""bench/upstream.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report


@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("upstream.py")


def test_last_line_is_the_ratio_of_medians(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_direct_and_proxied_calls_report_median_and_p99(report):
    for label in ("direct to upstream", "through mcp-acl"):
        (row,) = [line for line in report.splitlines() if line.startswith(label + " ")]
        assert re.fullmatch(rf"{re.escape(label)}\s+median \d+\.\d{{3}} ms\s+p99 \d+\.\d{{3}} ms", row)


def test_the_calls_are_interleaved_and_counted(report):
    assert "tools/call round trip over loopback HTTP, 200 calls each, interleaved call by call" in report.splitlines()


def test_the_servers_run_as_mcp_acl_serve_runs(report):
    assert report.splitlines()[0].startswith("servers: uvicorn --loop uvloop --http httptools, on the listening socket of `mcp-acl serve`")
