"""bench/ollama_proxy.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

import pytest

from tests.bench.quick_run import quick_report


@pytest.fixture(scope="module")
def report() -> str:
    return quick_report("ollama_proxy.py")


def test_last_line_is_the_ratio_of_medians(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_the_relay_floor_is_reported_before_the_ratio(report):
    assert re.fullmatch(r"relay ratio \d+\.\d\d", report.splitlines()[-2])


def test_direct_relay_and_governed_chats_report_median_and_p99(report):
    for label in ("direct (tool run by the app)", "bare relay (no policy)", "governed (through /ollama)"):
        (row,) = [line for line in report.splitlines() if line.startswith(label + " ")]
        assert re.fullmatch(rf"{re.escape(label)}\s+median \d+\.\d{{3}} ms\s+p99 \d+\.\d{{3}} ms", row)


def test_the_chats_are_interleaved_and_counted(report):
    assert "a chat with one tool call, real `ollama` client, 100 chats each way, interleaved chat by chat" in report.splitlines()
