"""HTTP sessions ending: closed when the client leaves, ended at once when killed elsewhere."""

from __future__ import annotations

from mcp_acl.gateway.sessions import KILLED_MESSAGE, SessionStore

from .harness import HEADERS, INIT, bearer, cli, connect, serve, wait_for

async def test_session_is_recorded_with_its_identity_and_closed_at_the_end(world):
    store = SessionStore(world.engine)
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            await alice.list_tools()
            [row] = store.live()
            assert (row.subject, row.client_id, row.issuer, row.transport) == (
                "alice", "mcp-acl-cli", "http://127.0.0.1:8000", "http"
            )
        ended = await wait_for(lambda: store.get(row.id).ended_at and store.get(row.id))
    assert ended.end_reason == "closed"
    assert store.live() == []


async def test_killed_session_is_ended_here_and_answers_why(sqlite_world, subprocess_env):
    with serve(sqlite_world) as live:
        async with bearer(sqlite_world.token("alice")) as alice:
            opened = await alice.post(live.mcp_url, json=INIT, headers=HEADERS)
            session_id = opened.headers["mcp-session-id"]
            headers = {**HEADERS, "Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"}
            await alice.post(live.mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
            manager = live.app.state.session_manager
            assert session_id in manager.session_ids()
            assert cli(subprocess_env, "sessions", "kill", session_id, "--database", sqlite_world.database_url).returncode == 0
            await wait_for(lambda: session_id not in manager.session_ids())
            after = await alice.post(live.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers)
    assert after.status_code == 404
    assert after.json()["error"]["message"] == KILLED_MESSAGE
