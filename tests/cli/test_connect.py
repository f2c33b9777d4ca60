"""`mcp-acl connect`: the SDK client from the command line, against the real server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mcp_acl.cli import app

from gateway.harness import serve, sqlite_world  # noqa: F401 (fixture)


def _connect(*args: str):
    return CliRunner().invoke(app, ["connect", *args])


def test_connect_lists_what_the_token_may_use(sqlite_world):
    with serve(sqlite_world) as live:
        result = _connect("--url", live.mcp_url, "--token", sqlite_world.token("bob"), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["protocol"] == "2026-07-28"
    assert [t["name"] for t in found["tools"]] == ["files.list"]
    assert found["prompts"] == ["access-policy"]


def test_connect_call_that_is_refused_exits_1_with_the_refusal(sqlite_world):
    with serve(sqlite_world) as live:
        result = _connect(
            "--url", live.mcp_url, "--token", sqlite_world.token("alice"), "--legacy",
            "--call", "files.read", "--args", '{"path": "notes/todo.txt"}',
        )
    assert result.exit_code == 1
    assert result.stdout.startswith("Refused: tool:files.read is not allowed to user alice")


def test_connect_with_a_bad_token_says_it_was_refused(sqlite_world):
    with serve(sqlite_world) as live:
        result = _connect("--url", live.mcp_url, "--token", "not-a-token")
    assert result.exit_code == 2
    assert "the token was refused (401)" in result.stderr


def test_connect_needs_a_token():
    result = _connect("--url", "http://127.0.0.1:9/mcp")
    assert result.exit_code == 2 and "give --token" in result.stderr
