"""Sessions over real HTTP: recorded with their identity, killed from another process, never hijacked."""

from __future__ import annotations

import contextlib

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import update

from mcp_acl.gateway.sessions import KILLED, KILLED_MESSAGE, SessionStore
from mcp_acl.store import tables as t

from .harness import HEADERS, INIT, bearer, cli, connect, serve, wait_for
from .test_slots import blocked_world  # noqa: F401  (a fixture)

async def test_killed_session_is_refused(world, subprocess_env):
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            assert (await alice.call_tool("files.list", {})).is_error is False
            [row] = SessionStore(world.engine).live()
            killed = cli(subprocess_env, "sessions", "kill", row.id, "--database", world.database_url)
            assert killed.returncode == 0, killed.stderr
            with pytest.raises(MCPError, match=KILLED_MESSAGE):
                await alice.call_tool("files.list", {})
    assert SessionStore(world.engine).get(row.id).end_reason == "killed"


async def test_another_users_token_on_a_session_is_refused(sqlite_world):
    with serve(sqlite_world) as live:
        async with bearer(sqlite_world.token("alice")) as alice:
            opened = await alice.post(live.mcp_url, json=INIT, headers=HEADERS)
            session_id = opened.headers["mcp-session-id"]
        async with bearer(sqlite_world.token("bob")) as bob:
            hijack = await bob.post(
                live.mcp_url,
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                headers={**HEADERS, "Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"},
            )
    assert opened.status_code == 200
    assert hijack.status_code == 404
    assert "tools" not in hijack.text
    # Never reached a handler: nothing was decided or recorded for bob.
    assert SessionStore(sqlite_world.engine).get(session_id) is None or SessionStore(sqlite_world.engine).get(session_id).subject == "alice"


async def test_session_bound_to_another_identity_is_refused_by_the_gateway_itself(sqlite_world):
    # The SDK binds HTTP sessions too; this shows the gateway's own check holds
    # when the stored owner differs (e.g. recorded by another replica).
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            await alice.list_tools()
            with sqlite_world.engine.begin() as conn:
                conn.execute(update(t.sessions).values(subject="mallory"))
            with pytest.raises(MCPError, match="belongs to another identity"):
                await alice.list_tools()


async def test_a_call_that_outlives_its_killed_session_does_not_get_it_watched_again(blocked_world):
    world, gateway, blocker = blocked_world
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            await alice.list_tools()
            [row] = SessionStore(world.engine).live()
            assert gateway.notifier.watching(row.id)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_call_ignoring_the_end, alice)
                await wait_for(lambda: blocker.held)
                # Killed (the reaper ends it here) while its call still runs in a tool slot.
                SessionStore(world.engine).end(row.id, KILLED)
                await wait_for(lambda: row.id not in live.app.state.session_manager._server_instances)
                assert not gateway.notifier.watching(row.id)
                blocker.release.set()
            # The call's outcome is queued after the guard has had its last look at the session.
            await wait_for(lambda: world.audit_rows(kind="outcome"))
    assert not gateway.notifier.watching(row.id)
    assert row.id not in gateway.outboxes._boxes


async def _call_ignoring_the_end(client) -> None:
    with contextlib.suppress(MCPError):
        await client.call_tool("blocker.hold", {})
