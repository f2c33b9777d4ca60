"""Three `mcp-acl serve` replicas on one PostgreSQL: one policy, sessions, one audit trail.

Each test makes its own users, so the tests share the replicas (started
once for the module) without seeing each other's changes.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import httpx2
import pytest
from mcp.server.subscriptions import ToolsListChanged
from mcp.shared.exceptions import MCPError
from sqlalchemy import text

from gateway.harness import HEADERS, INIT, connect, text_of
from mcp_acl.gateway.sessions import KILLED_MESSAGE, SessionStore
from mcp_acl.store import PolicyAdmin

from .harness import cli, listen_backends, recorder

pytestmark = pytest.mark.postgres

REFUSED_LIST = "No tool named files.list is available to you."


def _user_with_list(world, name: str) -> int:
    """A new user allowed files.list alone; the grant's id."""
    admin = PolicyAdmin(world.engine)
    admin.add_user(name)
    return admin.add_grant(f"user:{name}", "tool:files.list")


def _revoke_on_cli(world, env, grant: int) -> None:
    cli(env, "revoke", str(grant), "--database", world.database_url)


async def _calls_then_revoke(world, replicas, user: str, revoke) -> tuple[list, list[list[str]], object]:
    """A 2025-11-25 session on each replica and a 2026-07-28 listen stream on the last; then `revoke()`.

    Returns each replica's answer to the next call, what each session heard, and the listen stream's event.
    """
    token = world.token(user)
    heard: list[list[str]] = [[] for _ in replicas]
    async with AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(connect(r.url, token, message_handler=recorder(heard[i])))
            for i, r in enumerate(replicas)
        ]
        stateless = await stack.enter_async_context(connect(replicas[-1].url, token, mode="auto"))
        stream = await stack.enter_async_context(stateless.listen(tools_list_changed=True))
        for session in sessions:
            assert not (await session.call_tool("files.list", {})).is_error
        assert not (await stateless.call_tool("files.list", {})).is_error
        revoke()
        # The revoke has committed: no replica may allow the next call.
        after = [await s.call_tool("files.list", {}) for s in sessions]
        after.append(await stateless.call_tool("files.list", {}))
        with anyio.fail_after(30):
            while not all(heard):
                await anyio.sleep(0.02)
            event = await anext(aiter(stream))
    return after, heard, event


async def test_a_revoke_refuses_the_next_call_on_every_replica_and_tells_every_session(pg_world, env, three):
    grant = _user_with_list(pg_world, "carol")
    after, heard, event = await _calls_then_revoke(pg_world, three, "carol", lambda: _revoke_on_cli(pg_world, env, grant))
    assert all(r.is_error and text_of(r).startswith(REFUSED_LIST) for r in after)
    assert heard == [["notifications/tools/list_changed"]] * len(three)
    assert isinstance(event, ToolsListChanged)


async def test_a_replica_whose_listen_connection_was_cut_still_refuses_and_hears(pg_world, three):
    cut = three[1]
    before = listen_backends(pg_world.engine)
    assert set(before) == {r.pid for r in three}
    grant = _user_with_list(pg_world, "dora")

    def cut_then_revoke() -> None:
        with pg_world.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before[cut.pid]}).scalar()
        # Committed at once, before the cut replica listens again (it waits a second first):
        # the NOTIFY cannot reach it.
        PolicyAdmin(pg_world.engine).revoke(grant)

    after, heard, event = await _calls_then_revoke(pg_world, three, "dora", cut_then_revoke)
    # Its admission reads the revision, so it refuses anyway; its notifier's own look
    # at the revision finds the change, so its session hears list_changed too.
    assert all(r.is_error and text_of(r).startswith(REFUSED_LIST) for r in after)
    assert heard == [["notifications/tools/list_changed"]] * len(three)
    # And it listens again, on a new connection.
    with anyio.fail_after(30):
        while listen_backends(pg_world.engine).get(cut.pid) in (None, before[cut.pid]):
            await anyio.sleep(0.1)


async def test_a_session_killed_on_the_cli_is_refused_wherever_it_lands(pg_world, env, three):
    _user_with_list(pg_world, "erin")
    home, other = three[0], three[1]
    token = pg_world.token("erin")

    async def on(replica, session_id: str) -> httpx2.Response:
        async with httpx2.AsyncClient(headers={**HEADERS, "Authorization": f"Bearer {token}"}) as http:
            return await http.post(replica.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                   headers={"Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"})

    async with connect(home.url, token) as erin:
        assert not (await erin.call_tool("files.list", {})).is_error
        session_id = next(r.id for r in SessionStore(pg_world.engine).live() if r.subject == "erin")
        # A replica that does not hold the session gives the protocol's unknown-session answer.
        assert (await on(other, session_id)).status_code == 404
        cli(env, "sessions", "kill", session_id, "--database", pg_world.database_url)
        with pytest.raises(MCPError) as refused:
            await erin.call_tool("files.list", {})
    assert (await on(other, session_id)).status_code == 404
    answer = await on(home, session_id)
    assert answer.status_code == 404 and KILLED_MESSAGE in answer.text
    assert KILLED_MESSAGE in str(refused.value)
    assert [r.decision for r in pg_world.audit_rows(kind="decision", subject="erin")] == ["allow"]


async def test_a_session_is_never_another_callers_on_another_replica(pg_world, three):
    first, second = three[0], three[1]
    async with httpx2.AsyncClient(headers={**HEADERS, "Authorization": f"Bearer {pg_world.token('alice')}"}) as alice:
        opened = await alice.post(first.url, json=INIT)
        session_id = opened.headers["mcp-session-id"]
    async with httpx2.AsyncClient(headers={**HEADERS, "Authorization": f"Bearer {pg_world.token('bob')}"}) as bob:
        for replica in (first, second):
            answer = await bob.post(replica.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                    headers={"Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"})
            assert answer.status_code == 404


async def test_stateless_requests_work_on_any_replica(pg_world, three):
    _user_with_list(pg_world, "fred")
    token = pg_world.token("fred")
    for replica in three:
        async with connect(replica.url, token, mode="auto") as fred:
            assert fred.protocol_version == "2026-07-28"
            assert [t.name for t in (await fred.list_tools()).tools] == ["files.list"]
            assert not (await fred.call_tool("files.list", {})).is_error


async def test_concurrent_calls_on_every_replica_while_a_revoke_commits(pg_world, env, three):
    grant = _user_with_list(pg_world, "gina")
    token = pg_world.token("gina")
    revoked = anyio.Event()
    # Per call: whether it started after the revoke's CLI had returned, and whether it was allowed.
    calls: list[tuple[bool, bool]] = []

    async def caller(replica, mode: str) -> None:
        async with connect(replica.url, token, mode=mode) as client:
            after_revoke = 0
            while after_revoke < 3:
                started_after = revoked.is_set()
                result = await client.call_tool("files.list", {})
                calls.append((started_after, not result.is_error))
                after_revoke += started_after

    async def revoke_midway() -> None:
        while len(calls) < 60:
            await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(cli, env, "revoke", str(grant), "--database", pg_world.database_url)
        revoked.set()

    async with anyio.create_task_group() as tg:
        for replica in three:
            for mode in ("auto", "legacy"):
                tg.start_soon(caller, replica, mode)
        tg.start_soon(revoke_midway)

    allowed = sum(ok for _, ok in calls)
    assert allowed >= 60
    # Not one call that started after the revoke committed was allowed, on any replica.
    assert not [ok for started_after, ok in calls if started_after and ok]
    verified = cli(env, "audit", "verify", "--database", pg_world.database_url)
    assert "audit log intact" in verified.stdout
    decisions = pg_world.audit_rows(kind="decision", subject="gina")
    revision = PolicyAdmin(pg_world.engine).revision()
    # Every allowed call has its decision row, each decided before the revoke's revision.
    assert sum(r.decision == "allow" for r in decisions) == allowed
    assert all(r.revision < revision for r in decisions if r.decision == "allow")
    assert len(decisions) == len(calls)
    # ...and its outcome (written in batches just after the answers).
    with anyio.fail_after(30):
        while len(pg_world.audit_rows(kind="outcome", subject="gina")) < allowed:
            await anyio.sleep(0.1)
    assert len(pg_world.audit_rows(kind="outcome", subject="gina", outcome="ok")) == allowed
