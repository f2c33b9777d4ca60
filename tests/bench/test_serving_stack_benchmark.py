"""bench/serving_stack.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re

from tests.bench.quick_run import quick_report


def test_every_stack_reports_both_clients_and_the_last_line_is_the_ratio():
    lines = quick_report("serving_stack.py").splitlines()
    for stack in ("asyncio+h11", "asyncio+httptools", "uvloop+h11", "uvloop+httptools"):
        (row,) = [line for line in lines if line.startswith(stack + " ")]
        assert re.fullmatch(rf"{re.escape(stack)}\s+SDK client median \d+\.\d{{3}} ms\s+plain httpx median \d+\.\d{{3}} ms", row)
    assert re.fullmatch(r"ratio \d+\.\d\d", lines[-1])
