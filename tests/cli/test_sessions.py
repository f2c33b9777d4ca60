"""`mcp-acl sessions list|kill` in real processes (the kill itself end to end: tests/gateway/test_guard.py)."""

from __future__ import annotations

import json

from gateway.harness import cli, connect, serve, sqlite_world  # noqa: F401 (fixture)

from mcp_acl.gateway.sessions import SessionStore
from mcp_acl.policy import Identity


async def test_sessions_list_shows_the_live_session(sqlite_world, subprocess_env):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            await bob.list_tools()
            listed = cli(subprocess_env, "sessions", "list", "--json", "--database", sqlite_world.database_url)
        table = cli(subprocess_env, "sessions", "list", "--database", sqlite_world.database_url)
    assert listed.returncode == 0, listed.stderr
    [session] = json.loads(listed.stdout)
    assert (session["subject"], session["client_id"], session["transport"], session["ended_at"]) == (
        "bob", "mcp-acl-cli", "http", None
    )
    assert "no live sessions" in table.stdout


def test_killing_an_unknown_session_exits_2(sqlite_world, subprocess_env):
    result = cli(subprocess_env, "sessions", "kill", "nope", "--database", sqlite_world.database_url)
    assert result.returncode == 2
    assert "no session 'nope'" in result.stderr


def test_a_subject_that_looks_like_markup_is_listed_literally(sqlite_world, subprocess_env):
    # Token values are shown as they are; Rich markup in them must not break the table.
    SessionStore(sqlite_world.engine).open("s-markup", Identity("[/]evil[b]", "c[/]"), "http")
    result = cli(subprocess_env, "sessions", "list", "--database", sqlite_world.database_url)
    assert result.returncode == 0, result.stderr
    assert "[/]evil[b]" in result.stdout and "c[/]" in result.stdout


def test_a_subject_with_a_newline_is_listed_on_one_line(sqlite_world, subprocess_env):
    SessionStore(sqlite_world.engine).open("s-newline", Identity("mallory\nforged-row", "c\x1b[31m"), "http")
    result = cli(subprocess_env, "sessions", "list", "--database", sqlite_world.database_url)
    assert result.returncode == 0, result.stderr
    assert "mallory\\nforged-row" in result.stdout and "c\\x1b[31m" in result.stdout
    assert "\x1b" not in result.stdout
