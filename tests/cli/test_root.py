"""The `mcp-acl` command itself: its top-level options."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_version_prints_the_installed_version_and_exits_0(subprocess_env):
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "--version"], env=subprocess_env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"mcp-acl {version('mcp-acl')}\n"
