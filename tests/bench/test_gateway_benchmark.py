"""bench/gateway.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report



@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("gateway.py")


def test_last_line_is_the_ratio_of_medians(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_both_servers_report_median_and_p99(report):
    for server in ("bare mcp server", "mcp-acl"):
        (row,) = [line for line in report.splitlines() if line.startswith(server + " ")]
        assert re.fullmatch(rf"{re.escape(server)}\s+median \d+\.\d{{3}} ms\s+p99 \d+\.\d{{3}} ms", row)


def test_tools_list_reports_the_filtered_size(report):
    assert re.search(r"^tools/list with 500 of 1000 tools visible: first \d+\.\d ms, then median \d+\.\d\d ms$", report, re.M)


def test_plain_httpx_client_figures_come_before_the_ratio_in_both_eras(report):
    lines = report.splitlines()
    for era in ("2025-11-25", "2026-07-28"):
        for server in ("bare mcp server", "mcp-acl"):
            label = f"plain {era}, {server}"
            (row,) = [i for i, line in enumerate(lines) if line.startswith(label + " ")]
            assert re.fullmatch(rf"{re.escape(label)}\s+median \d+\.\d{{3}} ms\s+p99 \d+\.\d{{3}} ms", lines[row])
            assert row < len(lines) - 1


def test_the_servers_run_as_mcp_acl_serve_runs(report):
    assert report.splitlines()[0] == "servers: uvicorn --loop uvloop --http httptools, on the listening socket of `mcp-acl serve`"
