"""Listings never lose text: at 80 columns (a pipe) or narrower every cell shows whole; each has --json.

Each listing runs in a real process writing to a pipe with COLUMNS set, as a
narrow terminal or `| less` would see it; its --json output says what the
cells hold, and every word of every cell must appear whole in the text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import typer

from mcp_acl.cli import app
from mcp_acl.cli.docgen import command_paths
from mcp_acl.gateway.sessions import SessionStore
from mcp_acl.policy import Identity
from mcp_acl.store import make_engine

from tests.conftest import REPO_ROOT

LONG_NOTE = "Analysts may read the quarterly sales reports while the audit committee prepares its yearly review"


def words_of(row: dict, fields: tuple[str, ...]) -> list[str]:
    """The whitespace-separated words of the given fields (lists joined as the table joins them)."""
    found = []
    for field in fields:
        value = row[field]
        text = ", ".join(value) if isinstance(value, list) else "" if value is None else str(value)
        found += text.split()
    return found


# command -> the --json fields its table shows
LISTINGS = {
    ("grants",): ("id", "effect", "principal", "target", "when", "note"),
    ("user", "list"): ("name", "roles"),
    ("role", "list"): ("name", "members"),
    ("client", "list"): ("id", "name"),
    ("sessions", "list"): ("id", "subject", "client_id", "issuer", "transport"),
    ("keys", "list"): ("kid", "alg", "state"),
    ("token", "list"): ("name", "user", "client", "state"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A demo database with a long note, a role with a long member list, a live session and a signing key."""
    home = tmp_path_factory.mktemp("tables")
    url = f"sqlite:///{home / 'acl.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACL_")}
    env |= {"PYTHONPATH": REPO_ROOT, "MCP_ACL_HOME": str(home)}

    def run(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "mcp_acl", *args, "--database", url], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    run("demo")
    run("grant", "role:analyst", "tool:sql.select", "--note", LONG_NOTE, "--when", 'args.table == "orders" && args.limit < 100')
    for role in ("support", "reviewer", "auditor", "on-call-engineer"):
        run("role", "add", role)
        run("role", "assign", "alice", role)
    run("token", "--user", "alice")
    run("token", "create", "--user", "alice", "--name", "reporting-bridge", "--client", "ollama-agent")
    engine = make_engine(url, create=False)
    try:
        identity = Identity("alice", "ollama-agent", issuer="https://keycloak.example.com/realms/acme")
        SessionStore(engine).open("3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b", identity, "streamable-http")
    finally:
        engine.dispose()
    return url, env


def output(world, *args: str, columns: int) -> str:
    url, env = world
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", *args, "--database", url],
        env={**env, "COLUMNS": str(columns)}, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [200, 80, 60])
@pytest.mark.parametrize("command", list(LISTINGS), ids=" ".join)
def test_listing_shows_every_word_of_every_cell_whole(world, command, columns):
    rows = json.loads(output(world, *command, "--json", columns=columns))
    assert rows, "the world should give every listing something to show"
    shown = Counter(output(world, *command, columns=columns).split())
    wanted = Counter(w for row in rows for w in words_of(row, LISTINGS[command]))
    missing = wanted - shown
    assert not missing, f"cut or lost at {columns} columns: {sorted(missing)}"


@pytest.mark.parametrize("columns", [80, 60])
def test_no_line_is_wider_than_the_terminal(world, columns):
    for command in LISTINGS:
        text = output(world, *command, columns=columns)
        assert max(len(line.rstrip()) for line in text.splitlines()) <= columns, command


def test_every_listing_command_has_json():
    root = typer.main.get_command(app)
    listings = [p for p in command_paths(root) if p and p[-1] in ("list", "grants", "tail", "catalogue")]
    assert set(LISTINGS) <= set(listings)
    for path in listings:
        command = root
        for name in path:
            command = command.commands[name]
        assert any("--json" in p.opts for p in command.params), path


@pytest.mark.parametrize("width", [12, 8, 3])
def test_nothing_is_lost_even_far_too_narrow(width):
    # Rich, given fewer cells than a name or a double-width character needs, drops them.
    from rich.console import Console

    from mcp_acl.cli._common import cells, table

    rows = [cells(1, "user:アリス", "報告/四半期.md"), cells(22, "role:analyst", "")]
    console = Console(width=width, record=True, color_system=None)
    console.print(table("id", "principal", "details", rows=rows, wrap=("details",)))
    shown = "".join(console.export_text().split())
    for text in ("id", "principal", "details", "1", "22", "user:アリス", "報告/四半期.md", "role:analyst"):
        assert text in shown
