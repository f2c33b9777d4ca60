"""Personal access tokens through the real gateway: a static `Authorization` header, the SDK's client, stdio, SQLite and PostgreSQL.

`mcp-acl token create` prints an opaque token once; the gateway accepts it
like an OAuth token, decides and audits under the token's user and client,
names the token (never its secret) in the audit, and refuses it from the
next call on once it is revoked (by name, by user, by client), expired, or
its user disabled.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

import anyio.to_thread
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import select
from typer.testing import CliRunner

from mcp_acl.auth.personal import PersonalTokens
from mcp_acl.auth.verifier import TokenRejected
from mcp_acl.cli import app as cli_app
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.lookup import standing_connection
from mcp_acl.store.personal_tokens import PREFIX, create, find_by_name, touch
from mcp_acl.store.token_ledger import utcnow

from .harness import connect, serve, text_of
from .test_stdio import stdio_client
from .test_token_revocation import assert_revoked_answer, post_initialize

runner = CliRunner()


def mcp_acl(world, *args: str):
    """`mcp-acl ARGS --database URL` in this process (exit code 0 asserted)."""
    result = runner.invoke(cli_app, [*args, "--database", world.database_url], prog_name="mcp-acl")
    assert result.exit_code == 0, result.output
    return result


def personal_token(world, name: str, user: str = "alice", *extra: str) -> str:
    return mcp_acl(world, "token", "create", "--user", user, "--name", name, *extra).stdout.strip()


def everything_stored(world) -> str:
    """Every audit, ledger and personal-token cell as one text, to search for a secret."""
    with world.engine.connect() as conn:
        rows = [*conn.execute(select(t.audit_events)), *conn.execute(select(t.access_tokens)),
                *conn.execute(select(t.personal_tokens))]
    return "\n".join(str(value) for row in rows for value in row)


async def test_a_static_header_token_works_is_audited_by_name_and_stops_at_revocation(world, caplog):
    caplog.set_level(logging.DEBUG)
    token = personal_token(world, "bridge", "alice", "--expires", "30d")
    assert token.startswith(PREFIX) and len(token) == len(PREFIX) + 43
    with serve(world) as live:
        for mode in ("legacy", "auto"):  # a 2025-11-25 session and sessionless 2026-07-28 calls
            async with connect(live.mcp_url, token, mode=mode) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                assert {"files.read", "files.write"} <= tools  # the default client is unrestricted
                assert text_of(await client.call_tool("files.read", {"path": "reports/q3.md"})).startswith("# Q3")
        async with connect(live.mcp_url, token) as client:
            await client.list_tools()
            said = mcp_acl(world, "token", "revoke", "bridge").stdout
            assert said.startswith("revoked personal token bridge (alice via mcp-acl-token)")
            with pytest.raises(MCPError):
                await client.call_tool("files.read", {"path": "reports/q3.md"})
        assert_revoked_answer(await post_initialize(live.mcp_url, token))
    decisions = world.audit_rows(kind="decision")
    assert decisions and {(r.issuer, r.subject, r.client_id) for r in decisions} == {("token:bridge", "alice", "mcp-acl-token")}
    [revocation] = world.audit_rows(kind="revocation")
    assert revocation.target == "token:bridge"
    tail = mcp_acl(world, "audit", "tail", "-n", "50").stdout
    assert "alice via mcp-acl-token with token:bridge" in tail
    listed = mcp_acl(world, "token", "list", "--json").stdout
    assert '"last_used": null' not in listed and '"state": "revoked"' in listed
    # The secret is in no stored row, no log line, no listing.
    assert token not in everything_stored(world)
    assert token not in caplog.text and token[len(PREFIX):] not in caplog.text
    assert token not in tail + listed + said


async def test_a_revocation_refuses_the_next_request_though_the_token_was_just_read(world):
    # On SQLite the token is read on the event loop, from a memo once read: the
    # revocation, committed by another process's connection, must still be seen.
    token = personal_token(world, "bridge")
    with serve(world) as live:
        async with connect(live.mcp_url, token) as client:
            for _ in range(3):
                assert text_of(await client.call_tool("files.read", {"path": "reports/q3.md"})).startswith("# Q3")
            mcp_acl(world, "token", "revoke", "bridge")
            with pytest.raises(MCPError):
                await client.call_tool("files.read", {"path": "reports/q3.md"})
        refused = await post_initialize(live.mcp_url, token)
    assert_revoked_answer(refused)
    # Refused by the personal-token lookup itself, not only by the deny-list after it.
    assert "the personal access token 'bridge' was revoked" in refused.headers["www-authenticate"]


async def test_on_sqlite_a_personal_token_is_read_on_the_event_loop_and_only_its_use_is_written_in_a_thread(
    sqlite_world, monkeypatch,
):
    world = sqlite_world
    token = personal_token(world, "loop")
    now = [utcnow()]
    standing = standing_connection(world.engine)
    tokens = PersonalTokens(world.engine, standing=standing, clock=lambda: now[0])
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):
        hops.append(func.__name__)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    try:
        await tokens.verify(token)
        assert hops == ["_touch"]  # the first use is written, in a worker thread
        hops.clear()
        for _ in range(3):
            assert (await tokens.verify(token)).subject == "alice"
        assert hops == []  # nothing waited: read on the loop
        now[0] += timedelta(seconds=61)
        await tokens.verify(token)
        assert hops == ["_touch"]  # a minute on, the use is written again; the read stayed on the loop
        hops.clear()
        mcp_acl(world, "token", "revoke", "loop")
        with pytest.raises(TokenRejected, match="'loop' was revoked"):
            await tokens.verify(token)
        assert hops == []
    finally:
        standing.close()
    assert find_by_name(world.engine, "loop").last_used_at == now[0]


async def test_a_token_for_a_restricted_client_carries_its_ceiling(world):
    token = personal_token(world, "agent", "alice", "--client", "ollama-agent")
    with serve(world) as live:
        async with connect(live.mcp_url, token) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
    assert "files.read" in tools and "files.write" not in tools  # the client's grants cap alice's


async def test_an_expired_token_is_refused(world):
    past = utcnow() - timedelta(days=2)
    token, _ = create(world.engine, name="old", user="alice", client=None, expires_at=past + timedelta(days=1), actor="t", now=past)
    with serve(world) as live:
        response = await post_initialize(live.mcp_url, token)
    assert response.status_code == 401 and "has expired" in response.headers["www-authenticate"]
    assert mcp_acl(world, "token", "list", "--json").stdout.count('"state": "expired"') == 1


async def test_disabling_the_user_or_revoking_by_user_or_client_refuses_its_tokens(world):
    alice, bob, agent = (personal_token(world, "a"), personal_token(world, "b", "bob"),
                         personal_token(world, "c", "bob", "--client", "ollama-agent"))
    with serve(world) as live:
        for token in (alice, bob, agent):
            assert (await post_initialize(live.mcp_url, token)).status_code == 200
        PolicyAdmin(world.engine, actor="ops").set_user_disabled("alice", True)
        assert_revoked_answer(await post_initialize(live.mcp_url, alice))
        PolicyAdmin(world.engine, actor="ops").set_user_disabled("alice", False)
        assert_revoked_answer(await post_initialize(live.mcp_url, alice))  # enabling again does not revive it
        assert "revoked 1 live access token" in mcp_acl(world, "token", "revoke", "--client", "ollama-agent").stdout
        assert_revoked_answer(await post_initialize(live.mcp_url, agent))
        assert (await post_initialize(live.mcp_url, bob)).status_code == 200
        mcp_acl(world, "token", "revoke", "--user", "bob")
        assert_revoked_answer(await post_initialize(live.mcp_url, bob))


async def test_an_unknown_or_forged_personal_token_is_refused(world):
    made = personal_token(world, "real")
    forged = made[:-1] + ("A" if made[-1] != "A" else "B")
    with serve(world) as live:
        for token in (forged, PREFIX + "x" * 43, PREFIX + "short"):
            response = await post_initialize(live.mcp_url, token)
            assert response.status_code == 401 and "not known here" in response.headers["www-authenticate"]


async def test_stdio_takes_a_personal_token_and_refuses_it_once_revoked(sqlite_world, subprocess_env):
    world = sqlite_world
    token = personal_token(world, "desktop")
    async with stdio_client(world, subprocess_env, token) as alice:
        assert not (await alice.call_tool("files.read", {"path": "reports/q3.md"})).is_error
        mcp_acl(world, "token", "revoke", "desktop")
        with pytest.raises(MCPError, match="revoked"):
            await alice.call_tool("files.read", {"path": "reports/q3.md"})
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "stdio", "--database", world.database_url],
        env={**subprocess_env, "MCP_ACL_TOKEN": token}, input="", capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and "revoked" in done.stderr and done.stdout == ""
    assert token not in done.stderr
    [decision] = world.audit_rows(kind="decision")
    assert (decision.issuer, decision.subject) == ("token:desktop", "alice")


def test_last_used_is_written_at_most_once_a_minute(engine):
    PolicyAdmin(engine).add_user("alice")
    now = utcnow()
    create(engine, name="n", user="alice", client=None, expires_at=None, actor=None, now=now)
    token = find_by_name(engine, "n")
    assert touch(engine, token, now)
    token = find_by_name(engine, "n")
    assert token.last_used_at == now
    assert not touch(engine, token, now + timedelta(seconds=59))
    # A replica holding the row as it was before the first write: the UPDATE's own condition stops it.
    stale = find_by_name(engine, "n").__class__(**{**token.__dict__, "last_used_at": None})
    assert not touch(engine, stale, now + timedelta(seconds=30))
    assert touch(engine, token, now + timedelta(seconds=61))
