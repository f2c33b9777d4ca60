"""Run a benchmark script in its quick mode, as a user would, and return what it printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def quick_report(script: str) -> str:
    """`python bench/SCRIPT --quick`; fails the test with the script's stderr if it exits non-zero."""
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout
