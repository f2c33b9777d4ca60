"""docs/cli.md, generated from the real `--help` of every command.

    python -m mcp_acl.cli.docgen           # rewrite docs/cli.md
    python -m mcp_acl.cli.docgen --check   # exit 1 if docs/cli.md is out of date

Help is rendered in a child process with a fixed terminal (100 columns, no
colour), because Typer reads the terminal's width and colour settings once,
when it is imported; the same text then comes out on every machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
HELP_ENV = {"TERMINAL_WIDTH": "100", "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
# Any of these would turn colour back on (see typer/rich_utils.py).
COLOUR_VARIABLES = ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "CLICOLOR_FORCE")

HEADER = """# mcp-acl command reference

Generated from the real `--help` output by `python -m mcp_acl.cli.docgen`;
do not edit by hand (a test fails when this page and the help disagree).
Every command takes `--database URL` (or `MCP_ACL_DATABASE_URL`; by default
`$MCP_ACL_HOME/mcp-acl.db`, and `make run` sets `MCP_ACL_HOME` to `.data/`).
Only `init`, `demo` and `run-demo` create a database; every other command
refuses a missing one and names the path it looked at (an SQLite file is
opened read/write unless the URL says otherwise, e.g. `?mode=ro`; a `?` in
a path is written `%3F`, a `%` as `%25`). Exit status 0 means
done (or allowed), 1 denied or a failed test, 2 bad input (one line on
stderr; a user, role or client name that is not stored is bad input
everywhere: ``user 'carol' does not exist (see `mcp-acl user list`; ...)``).

Listings print a table when it fits the terminal (a pipe counts as 80
columns, or `COLUMNS`), otherwise one block of `column  value` lines per
row (in a terminal too narrow even for that, each column name on a line
above its value); no text is ever cut. Each listing also takes `--json`
for scripts.
"""


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under `command` (a Typer command object), depth first, in help order."""
    found = [path]
    # Typer 0.2x carries its own copy of Click, so test for a group by shape.
    if isinstance(getattr(command, "commands", None), dict):
        for name, sub in command.commands.items():
            if not sub.hidden:
                found.extend(command_paths(sub, (*path, name)))
    return found


def help_text(app: typer.Typer, path: tuple[str, ...]) -> str:
    """The `--help` output of one command, trailing spaces removed."""
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="mcp-acl")
    if result.exit_code != 0:
        raise RuntimeError(f"mcp-acl {' '.join(path)} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.stdout.strip("\n").splitlines())


def render_here() -> str:
    """The whole page, rendered in this process with whatever terminal it has."""
    from mcp_acl.cli import app

    parts = [HEADER]
    for path in command_paths(typer.main.get_command(app)):
        parts.append(f"## {' '.join(('mcp-acl', *path))}\n\n```text\n{help_text(app, path)}\n```\n")
    return "\n".join(parts)


def render() -> str:
    """The whole page as a fixed 100-column, colourless terminal shows it."""
    env = {k: v for k, v in os.environ.items() if k not in COLOUR_VARIABLES}
    env.update(HELP_ENV)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl.cli.docgen", "--print"],
        env=env, capture_output=True, text=True, encoding="utf-8", check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rendering the help failed: {done.stderr.strip()}")
    return done.stdout


def main(argv: list[str]) -> int:
    """Write docs/cli.md, or with --check compare it, or with --print print it."""
    if argv == ["--print"]:
        sys.stdout.write(render_here())
        return 0
    page = render()
    if argv == ["--check"]:
        if DOC_PATH.is_file() and DOC_PATH.read_text(encoding="utf-8") == page:
            return 0
        print(f"{DOC_PATH} is out of date: run `python -m mcp_acl.cli.docgen`", file=sys.stderr)
        return 1
    if argv:
        print("usage: python -m mcp_acl.cli.docgen [--check]", file=sys.stderr)
        return 2
    DOC_PATH.write_text(page, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
