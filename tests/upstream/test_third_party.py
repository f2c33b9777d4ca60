"""A real third-party MCP server nobody here wrote, behind mcp-acl: the official reference server
`mcp-server-time` from PyPI, installed by the test set-up in its own virtual environment (it brings its
own `mcp` SDK, so it never runs in ours), registered with the CLI, governed by grants, called by the SDK.

Without PyPI the test skips, saying so; with MCP_ACL_REQUIRE_THIRD_PARTY=1 (as in CI) it fails instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.harness import World, cli, connect, serve, sqlite_world, text_of  # noqa: F401 (fixture)
from support.installs import installed

PACKAGE = "mcp-server-time"


@pytest.fixture(scope="session")
def time_server() -> Path:
    """The `mcp-server-time` executable in its own venv under the cache folder, installed once."""
    return installed(PACKAGE, None, PACKAGE)


async def tool_names(client, prefix: str) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools if t.name.startswith(prefix)}


async def test_mcp_server_time_from_pypi_is_listed_conditioned_called_and_revoked(sqlite_world, subprocess_env, time_server):
    world: World = sqlite_world
    db = ["--database", world.database_url]
    added = cli(subprocess_env, "upstream", "add", "time", "--command", f"{time_server} --local-timezone UTC", *db)
    assert added.returncode == 0, added.stderr
    granted = cli(subprocess_env, "grant", "user:alice", "tool:time.*", "--when", 'args.timezone == "UTC"', *db)
    assert granted.returncode == 0, granted.stderr
    grant_id = granted.stdout.strip().split()[-1]
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("bob")) as bob:
            # Alice sees the server's tools under its namespace; bob, with no grant, sees none of them.
            assert {"time.get_current_time", "time.convert_time"} <= await tool_names(alice, "time.")
            assert await tool_names(bob, "time.") == set()
            # Allowed by the condition: the upstream's own JSON answer, unchanged.
            now = await alice.call_tool("time.get_current_time", {"timezone": "UTC"})
            assert not now.is_error, text_of(now)
            answer = json.loads(text_of(now))
            assert answer["timezone"] == "UTC" and answer["datetime"]
            # Another timezone: refused by the argument condition before anything reaches the upstream.
            refused = await alice.call_tool("time.get_current_time", {"timezone": "Europe/Paris"})
            assert refused.is_error and text_of(refused).startswith("Refused:")
            refused_bob = await bob.call_tool("time.get_current_time", {"timezone": "UTC"})
            assert refused_bob.is_error
            # Revoking the grant stops the very next call.
            revoked = cli(subprocess_env, "revoke", grant_id, *db)
            assert revoked.returncode == 0, revoked.stderr
            after = await alice.call_tool("time.get_current_time", {"timezone": "UTC"})
            assert after.is_error and "time.get_current_time" in text_of(after)
    # Audited like any tool: allow (with its outcome), the condition's deny, and the refusals after revoking.
    rows = world.audit_rows(target="tool:time.get_current_time")
    alice_decisions = [r.decision for r in rows if r.decision and r.subject == "alice"]
    assert alice_decisions[:2] == ["allow", "deny"] and alice_decisions[-1] == "deny"
    assert [r.outcome for r in rows if r.outcome] == ["ok"]
