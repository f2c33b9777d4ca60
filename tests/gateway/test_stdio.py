"""`mcp-acl stdio`: the same catalogue and decisions as HTTP, for the token in MCP_ACL_TOKEN."""

from __future__ import annotations

import subprocess
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcp_acl.auth.tokens import issued_token
from mcp_acl.gateway.edge import CallerUnknown, FixedEdge
from mcp_acl.gateway.sessions import SessionStore
from mcp_acl.policy import Identity

from .harness import cli, connect, serve, text_of

CALLS = [
    ("files.read", {"path": "reports/q3.md"}),
    ("files.read", {"path": "notes/todo.txt"}),
    ("sql.select", {"table": "customers"}),
    ("sql.execute", {"statement": "DELETE FROM orders"}),
]


@asynccontextmanager
async def stdio_client(world, env: dict[str, str], token: str, mode: str = "legacy"):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_acl", "stdio", "--database", world.database_url],
        env={**env, "MCP_ACL_TOKEN": token},
    )
    async with Client(params, mode=mode) as client:
        yield client


async def _observe(client) -> dict:
    tools = {t.name: t.description for t in (await client.list_tools()).tools}
    results = []
    for name, args in CALLS:
        result = await client.call_tool(name, args)
        results.append((result.is_error, text_of(result)))
    prompt = (await client.get_prompt("access-policy")).messages[0].content.text
    return {"tools": tools, "results": results, "prompt": prompt}


async def test_stdio_gives_the_same_catalogue_and_decisions_as_http(world, subprocess_env):
    token = world.token("alice")
    async with stdio_client(world, subprocess_env, token) as over_stdio:
        seen_on_stdio = await _observe(over_stdio)
    with serve(world) as live:
        async with connect(live.mcp_url, token) as over_http:
            seen_on_http = await _observe(over_http)
    assert seen_on_stdio == seen_on_http
    assert [is_error for is_error, _ in seen_on_stdio["results"]] == [False, True, True, True]
    decisions = [(r.target, r.decision) for r in world.audit_rows(kind="decision")]
    assert decisions[: len(decisions) // 2] == decisions[len(decisions) // 2:]


async def test_stdio_serves_a_2026_client_too(sqlite_world, subprocess_env):
    async with stdio_client(sqlite_world, subprocess_env, sqlite_world.token("bob"), mode="auto") as bob:
        tools = [t.name for t in (await bob.list_tools()).tools]
        refused = await bob.call_tool("files.read", {"path": "reports/q3.md"})
    assert tools == ["files.list"]
    assert text_of(refused) == "No tool named files.read is available to you. Your tools: files.list."


async def test_stdio_session_is_recorded_and_can_be_killed(sqlite_world, subprocess_env):
    async with stdio_client(sqlite_world, subprocess_env, sqlite_world.token("bob")) as bob:
        await bob.list_tools()
        [row] = SessionStore(sqlite_world.engine).live()
        assert (row.subject, row.transport) == ("bob", "stdio")
        assert cli(subprocess_env, "sessions", "kill", row.id, "--database", sqlite_world.database_url).returncode == 0
        with pytest.raises(MCPError, match="ended by an administrator"):
            await bob.list_tools()


@pytest.mark.parametrize("token, says", [(None, "set MCP_ACL_TOKEN"), ("not-a-token", "was refused")])
def test_stdio_without_a_valid_token_exits_2_before_serving(sqlite_world, subprocess_env, token, says):
    env = {k: v for k, v in subprocess_env.items() if k != "MCP_ACL_TOKEN"}
    if token is not None:
        env["MCP_ACL_TOKEN"] = token
    initialize = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}\n'
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "stdio", "--database", sqlite_world.database_url],
        env=env, input=initialize, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr
    [row] = sqlite_world.audit_rows(kind="authentication")
    assert "stdio" in row.reason


def test_a_stdio_caller_is_unknown_once_its_token_has_expired():
    # Over HTTP every request re-verifies the token; a stdio process must
    # not outlive its token either.
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)]
    alice = Identity("alice", "mcp-acl-cli", issuer="http://127.0.0.1:8000")
    edge = FixedEdge(alice, "s1", expires_at=now[0] + timedelta(minutes=5), clock=lambda: now[0])
    assert edge.identity() == alice
    now[0] += timedelta(minutes=5)
    with pytest.raises(CallerUnknown, match="expired"):
        edge.identity()


async def test_a_stdio_token_revoked_while_serving_is_refused_at_the_next_call_and_at_start(sqlite_world, subprocess_env):
    token = sqlite_world.token("alice")
    jti = issued_token(token).jti
    async with stdio_client(sqlite_world, subprocess_env, token) as alice:
        assert not (await alice.call_tool("files.read", {"path": "reports/q3.md"})).is_error
        assert cli(subprocess_env, "token", "revoke", jti, "--database", sqlite_world.database_url).returncode == 0
        with pytest.raises(MCPError, match="revoked"):
            await alice.call_tool("files.read", {"path": "reports/q3.md"})
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "stdio", "--database", sqlite_world.database_url],
        env={**subprocess_env, "MCP_ACL_TOKEN": token}, input="", capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and "revoked" in done.stderr and done.stdout == ""
