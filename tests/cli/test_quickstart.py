"""`run-demo` (what `make run` does) tells a second terminal how to reach the database it serves."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import select

from mcp_acl.store import make_engine
from mcp_acl.store import tables as t

from tests.cli.test_serve import read_until, running


def served_grant_ids(home: Path) -> list[int]:
    engine = make_engine(f"sqlite:///{home / 'mcp-acl.db'}", create=False)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(select(t.grants.c.id)).scalars())
    finally:
        engine.dispose()


def test_pasted_lines_make_a_new_terminal_act_on_the_served_database(tmp_path, subprocess_env):
    home = tmp_path / "checkout" / ".data"
    with running({**subprocess_env, "MCP_ACL_HOME": str(home)}, "run-demo", "--port", "0") as (proc, lines):
        printed = read_until(proc, lines, "Press Ctrl-C")
        paste = [line.strip() for line in printed.splitlines() if line.startswith("  export ") or line.startswith("  alias ")]
        before = served_grant_ids(home)
        # A second terminal: a fresh HOME, no MCP_ACL_HOME, no virtual environment on PATH.
        terminal = {k: v for k, v in subprocess_env.items() if not k.startswith("MCP_ACL_")}
        terminal |= {"HOME": str(tmp_path / "user-home"), "PATH": "/usr/bin:/bin"}
        script = "\n".join([*paste, "mcp-acl grants --json >/dev/null", f"mcp-acl revoke {before[0]}"])
        done = subprocess.run(["bash", "-c", script], env=terminal, capture_output=True, text=True, check=False)
        after = served_grant_ids(home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"revoked #{before[0]} ")
    assert after == before[1:]
    assert not (tmp_path / "user-home" / ".local").exists(), "the CLI made a second database in the default place"


def test_paste_block_names_the_served_home_as_an_absolute_path(tmp_path, subprocess_env, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**subprocess_env, "MCP_ACL_HOME": "relative-home"}
    with running(env, "run-demo", "--port", "0", "--database", f"sqlite:///{tmp_path / 'served.db'}") as (proc, lines):
        printed = read_until(proc, lines, "Press Ctrl-C")
    assert f"export MCP_ACL_HOME={tmp_path / 'relative-home'}" in printed
    assert f"export MCP_ACL_DATABASE_URL=sqlite:///{tmp_path / 'served.db'}" in printed


def test_a_relative_served_database_is_pasted_as_an_absolute_one(tmp_path, monkeypatch):
    from mcp_acl.cli.quickstart import shell_setup
    from mcp_acl.store.engine import sqlite_file

    monkeypatch.chdir(tmp_path)
    line = next(x for x in shell_setup("sqlite:///it's here/acl.db") if x.startswith("export MCP_ACL_DATABASE_URL="))
    # Pasted into a terminal that is somewhere else.
    done = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$MCP_ACL_DATABASE_URL"'], cwd="/",
                          capture_output=True, text=True, check=True)
    assert sqlite_file(done.stdout) == tmp_path / "it's here" / "acl.db"
