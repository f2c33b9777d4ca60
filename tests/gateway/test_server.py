"""The MCP handlers over real HTTP: per-identity lists, decided calls, refusals."""

from __future__ import annotations

import pytest

from .harness import REPORTS_NOTE, connect, serve, text_of


async def test_alice_and_bob_see_different_tools(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            alice_tools = sorted(t.name for t in (await alice.list_tools()).tools)
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            bob_tools = sorted(t.name for t in (await bob.list_tools()).tools)
    assert alice_tools == ["files.list", "files.read", "sql.select"]
    assert bob_tools == ["files.list"]
