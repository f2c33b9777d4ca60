"""CLI fixtures: run `mcp-acl` in-process against a fresh database, and photograph the store."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.store import make_engine
from mcp_acl.store import tables as t


@dataclass
class Cli:
    """`mcp-acl` bound to one database: `cli("user", "add", "alice")`."""

    url: str

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--database", self.url], prog_name="mcp-acl")

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; return its standard output."""
        result = self(*args)
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    def rejects(self, *args: str) -> str:
        """Run a command that must fail with exit 2, one error line and no traceback; return the line."""
        before = snapshot(self.url)
        result = self(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert snapshot(self.url) == before, "a rejected command changed the store"
        return lines[0]


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every policy row and the revision, to show that nothing changed."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted(tuple(str(v) for v in row) for row in conn.execute(select(table)))
                for table in (t.users, t.roles, t.role_members, t.clients, t.grants, t.upstreams, t.policy_revision)
            }
    finally:
        engine.dispose()


@pytest.fixture
def cli_for():
    """A factory: the CLI bound to any database URL."""
    return Cli


@pytest.fixture
def store_rows():
    """`store_rows(url)`: every policy row and the revision."""
    return snapshot


@pytest.fixture
def run_process(subprocess_env):
    """`run_process(url, *args)`: `mcp-acl ARGS --database URL` in a real child process."""

    def run(url: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mcp_acl", *args, "--database", url],
            env=subprocess_env, capture_output=True, text=True, check=False,
        )

    return run


@pytest.fixture
def cli(database_url) -> Cli:
    """The CLI on a new, initialised database (SQLite and PostgreSQL)."""
    runner = Cli(database_url)
    runner.ok("init")
    return runner
