"""docs/cli.md matches the real help, and every command is documented with an example."""

from __future__ import annotations

import pytest
import typer

from mcp_acl.cli import app
from mcp_acl.cli.docgen import DOC_PATH, command_paths, render

COMMANDS = command_paths(typer.main.get_command(app))


def _command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def test_cli_reference_matches_the_real_help():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), "docs/cli.md is stale: run `python -m mcp_acl.cli.docgen`"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "mcp-acl")
def test_every_command_has_a_section_in_the_reference(path):
    assert f"\n## {' '.join(('mcp-acl', *path))}\n" in DOC_PATH.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [p for p in COMMANDS if not hasattr(_command(p), "commands")], ids=" ".join)
def test_every_command_help_has_a_summary_and_an_example(path):
    help_text = _command(path).help or ""
    summary, _, rest = help_text.strip().partition("\n")
    assert summary.strip() and summary.strip()[-1] in ".)", help_text
    # The worked example: the command itself, in use, below the summary.
    assert "mcp-acl " + " ".join(path) in rest, help_text


def test_expected_commands_exist():
    names = {" ".join(p) for p in COMMANDS}
    assert names >= {
        "init", "user add", "user list", "user remove", "role add", "role list", "role remove",
        "role assign", "role unassign", "client add", "client list", "client remove",
        "grant", "revoke", "grants", "check", "policy export", "policy import", "policy test",
    }
