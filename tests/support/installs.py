"""Third-party programs from PyPI (Ollama MCP clients, an MCP server), each in its own virtual environment
under the cache folder.

Each pins its own `mcp` SDK (1.x or another 2.x), so none of them runs in ours. A program is
installed once, at the version named here, and kept between sessions; a half-built environment has no
marker and is rebuilt. Without PyPI the tests skip, saying so; with MCP_ACL_REQUIRE_THIRD_PARTY=1 (as in
CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REQUIRE = os.environ.get("MCP_ACL_REQUIRE_THIRD_PARTY") == "1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcp-acl-tests"


def _pypi_reachable(package: str) -> bool:
    try:
        with urllib.request.urlopen(f"https://pypi.org/simple/{package}/", timeout=15):
            return True
    except OSError:
        return False


def _install(venv: Path, requirements: list[str]) -> subprocess.CompletedProcess:
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    if made.returncode:
        return made
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements]
    return subprocess.run(pip, capture_output=True, text=True, timeout=900)


def _runs(venv: Path) -> bool:
    # A cached venv whose base interpreter has gone (Python upgraded or removed) is rebuilt.
    try:
        return subprocess.run([str(venv / "bin" / "python"), "-c", "pass"], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def installed(package: str, version: str | None, executable: str, also: tuple[str, ...] = ()) -> Path:
    """The path of `executable` from `package==version` (the newest when `version` is None; with the `also`
    requirements beside it, for a client whose own pins are too loose to run), installed into its own venv once."""
    requirements = [package if version is None else f"{package}=={version}", *also]
    requirement = " ".join(requirements)
    venv = CACHE / package / "venv"
    marker, program = venv / ".installed", venv / "bin" / executable
    if not (marker.exists() and marker.read_text() == requirement and program.exists() and _runs(venv)):
        done = _install(venv, requirements)
        if done.returncode or not program.exists():
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no executable"]
            if REQUIRE or _pypi_reachable(package):
                pytest.fail(f"could not install {requirement} into {venv}: {why[0]}")
            pytest.skip(f"PyPI is unreachable, so {package} cannot be installed (set MCP_ACL_REQUIRE_THIRD_PARTY=1 to fail instead)")
        marker.write_text(requirement)
    return program
