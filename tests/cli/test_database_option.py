"""`--database` on every command: only set-up commands create a database; bad URLs get one line.

A command that reads or changes the policy must never leave a new file or
folder behind when pointed at the wrong place, and must say where it looked
and how to point it at the right database, before suggesting `init`.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
import typer
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.cli.docgen import command_paths

# Commands whose job is to set a database up; every other one only opens one.
CREATING = {("init",), ("demo",), ("run-demo",)}
# Arguments that get each command past its own checks to the point where it opens the database.
ARGS = {
    ("grant",): ["user:alice", "tool:files.read"],
    ("revoke",): ["1"],
    ("check",): ["user:alice", "tool:files.read"],
    ("token",): ["--user", "alice"],
    ("token", "revoke"): ["some-jti"],
    ("token", "create"): ["--user", "alice", "--name", "bridge"],
    ("catalogue",): ["--user", "alice"],
    ("register",): ["vscode", "--stdio", "--user", "alice"],
    ("user", "add"): ["alice"],
    ("user", "passwd"): ["alice", "--password-stdin"],
    ("user", "remove"): ["alice"],
    ("role", "add"): ["analyst"],
    ("role", "remove"): ["analyst"],
    ("role", "assign"): ["alice", "analyst"],
    ("role", "unassign"): ["alice", "analyst"],
    ("client", "add"): ["agent"],
    ("client", "secret"): ["agent"],
    ("client", "remove"): ["agent"],
    ("policy", "import"): ["{policy_file}"],
    ("policy", "test"): ["{policy_file}"],
    ("sessions", "kill"): ["0123"],
    ("serve",): ["--port", "0"],
    ("upstream", "add"): ["time", "--url", "http://127.0.0.1:9/mcp"],
    ("upstream", "show"): ["time"],
    ("upstream", "remove"): ["time"],
    ("upstream", "approve"): ["time", "--yes"],
    ("upstream", "refresh"): ["time"],
}


def opening_commands() -> list[tuple[str, ...]]:
    """Every command with a --database option, except those that create a database."""
    root = typer.main.get_command(app)
    found = []
    for path in command_paths(root):
        command = root
        for name in path:
            command = command.commands[name]
        # A group counts when it also runs on its own (`token --user alice` mints).
        is_group = isinstance(getattr(command, "commands", None), dict)
        if (is_group and not getattr(command, "invoke_without_command", False)) or path in CREATING:
            continue
        if any("--database" in p.opts for p in command.params):
            found.append(path)
    return found


def run(path: tuple[str, ...], url: str, tmp_path) -> object:
    policy_file = tmp_path / "policy.yaml"
    args = [a.format(policy_file=policy_file) for a in ARGS.get(path, [])]
    return CliRunner().invoke(app, [*path, *args, "--database", url], prog_name="mcp-acl", input="")


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_every_command_that_opens_a_database_is_covered():
    assert set(ARGS) - set(opening_commands()) == set(), "ARGS names a command that no longer exists"
    assert {("grants",), ("sessions", "list"), ("audit", "tail"), ("keys", "list")} <= set(opening_commands())


@pytest.mark.parametrize("path", opening_commands(), ids=" ".join)
def test_command_on_a_missing_database_creates_nothing(path, tmp_path):
    missing = tmp_path / "nonexistent" / "dir" / "acl.db"
    (tmp_path / "policy.yaml").write_text("[]\n")
    line = one_error_line(run(path, f"sqlite:///{missing}", tmp_path))
    assert f"at {missing}" in line
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("path", opening_commands(), ids=" ".join)
def test_command_with_an_unparseable_url_says_so_in_one_line(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text("[]\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_error_line(run(path, "foo", tmp_path))
    assert "not a database URL: 'foo'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unparseable_url_prints_no_traceback(tmp_path, subprocess_env):
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "grants", "--database", "foo"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: not a database URL: 'foo' (use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_missing_database_error_names_the_path_and_how_to_point_elsewhere(tmp_path, monkeypatch):
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("MCP_ACL_HOME", str(home))
    result = CliRunner().invoke(app, ["revoke", "2"], prog_name="mcp-acl")
    line = one_error_line(result)
    assert f"at {home / 'mcp-acl.db'} (from MCP_ACL_HOME={home})" in line
    # Pointing elsewhere comes before creating a new, empty database.
    assert line.index("MCP_ACL_HOME=DIR") < line.index("--database URL") < line.index("mcp-acl init")
    assert not home.exists()


def test_uninitialised_file_is_refused_and_gets_no_tables(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    line = one_error_line(CliRunner().invoke(app, ["grants", "--database", f"sqlite:///{empty}"], prog_name="mcp-acl"))
    assert f"no initialised mcp-acl database at {empty} (from --database)" in line
    with closing(sqlite3.connect(empty)) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_init_still_creates_the_folder_and_the_database(tmp_path):
    target = tmp_path / "new" / "acl.db"
    result = CliRunner().invoke(app, ["init", "--database", f"sqlite:///{target}"], prog_name="mcp-acl")
    assert result.exit_code == 0, result.output
    assert target.is_file()


def _initialised(tmp_path) -> str:
    target = tmp_path / "acl.db"
    assert CliRunner().invoke(app, ["init", "--database", f"sqlite:///{target}"], prog_name="mcp-acl").exit_code == 0
    return str(target)


def test_a_read_only_url_stays_read_only(tmp_path):
    # Opening read/write is the default for existing files, not an override of `?mode=ro`.
    url = f"sqlite:///{_initialised(tmp_path)}?mode=ro"
    result = CliRunner().invoke(app, ["user", "add", "carol", "--database", url], prog_name="mcp-acl")
    assert "readonly database" in one_error_line(result)
    listed = CliRunner().invoke(app, ["user", "list", "--json", "--database", url], prog_name="mcp-acl")
    assert listed.exit_code == 0 and "carol" not in listed.output


def test_a_uri_filename_is_not_created_by_a_reading_command(tmp_path):
    missing = tmp_path / "missing.db"
    one_error_line(CliRunner().invoke(app, ["grants", "--database", f"sqlite:///file:{missing}?uri=true"], prog_name="mcp-acl"))
    assert not missing.exists()


@pytest.mark.parametrize("folder", ["with space", "hash#x", "pct%x", "quote'x", "uni-é"])
def test_paths_with_awkward_characters_open_after_init(tmp_path, folder):
    (tmp_path / folder).mkdir()
    url = f"sqlite:///{_initialised(tmp_path / folder)}"
    result = CliRunner().invoke(app, ["user", "add", "carol", "--database", url], prog_name="mcp-acl")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / folder).iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["acl.db"]
