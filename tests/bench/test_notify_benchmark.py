"""bench/notify.py runs end to end in quick mode and prints what it promises.

Only the shape of the report is checked, never the speed: the machine is shared.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "notify.py"


@pytest.fixture(scope="module")
def report() -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_last_line_is_the_ratio_of_listen_over_get_stream(report):
    assert re.fullmatch(r"ratio \d+\.\d\d", report.splitlines()[-1])


def test_both_eras_are_timed_on_both_servers(report):
    for server in ("signalled", "poll only"):
        for stream in ("GET stream", "listen"):
            (row,) = [line for line in report.splitlines() if line.startswith(f"{server:<10} {stream:<11}")]
            assert re.fullmatch(r".{22}\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d", row)
