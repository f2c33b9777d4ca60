"""Revoked access tokens through the real gateway: real signed tokens, real HTTP, the SDK's client, SQLite and PostgreSQL.

`mcp-acl token revoke` (one jti, a user, a client), disabling or removing
a user or client: the next request with the token gets 401
`invalid_token`; a revocation that lands after the bearer guard let a
request in still stops its call in the admission; a deny-list that cannot
be read refuses.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import replace

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from typer.testing import CliRunner

from mcp_acl.auth.tokens import issued_token
from mcp_acl.cli import app as cli_app
from mcp_acl.gateway.revoked import REVOKED_MESSAGE, RevokedTokens
from mcp_acl.store import PolicyAdmin, make_engine
from mcp_acl.store.engine import StoreError

from .harness import HEADERS, INIT, connect, serve, text_of

runner = CliRunner()


def mcp_acl(world, *args: str):
    """`mcp-acl ARGS --database URL` in this process; the result (exit code 0 asserted)."""
    result = runner.invoke(cli_app, [*args, "--database", world.database_url], prog_name="mcp-acl")
    assert result.exit_code == 0, result.output
    return result


def cli_token(world, user: str, *extra: str) -> str:
    """A token minted by `mcp-acl token --user USER` (recorded in the ledger)."""
    return mcp_acl(world, "token", "--user", user, *extra).stdout.strip()


def jti_of(token: str) -> str:
    return issued_token(token).jti


async def post_initialize(url: str, token: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, headers={**HEADERS, "Authorization": f"Bearer {token}"}, json=INIT)


def assert_revoked_answer(response: httpx2.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert "revoked" in challenge and "resource_metadata=" in challenge
    assert json.loads(response.text)["error"] == "invalid_token"


async def test_revoking_a_jti_refuses_the_next_call_of_a_live_session(world):
    token = cli_token(world, "alice")
    with serve(world) as live:
        async with connect(live.mcp_url, token) as client:
            assert text_of(await client.call_tool("files.read", {"path": "reports/q3.md"})).startswith("# Q3")
            said = mcp_acl(world, "token", "revoke", jti_of(token)).stdout
            assert f"revoked token {jti_of(token)} (alice via mcp-acl-cli" in said
            # The SDK's client without an OAuth provider reports the 401 as an error; with one, it signs in again.
            with pytest.raises(MCPError):
                await client.call_tool("files.read", {"path": "reports/q3.md"})
        assert_revoked_answer(await post_initialize(live.mcp_url, token))
        # Another token of the same user is untouched.
        assert (await post_initialize(live.mcp_url, cli_token(world, "alice"))).status_code == 200
    [row] = world.audit_rows(kind="revocation")
    assert row.target == f"token:{jti_of(token)}" and row.action == "revoke" and row.subject  # the admin who ran it


async def test_a_token_the_ledger_never_saw_is_revoked_by_its_jti(world):
    token = world.token("alice")  # signed, but not through `mcp-acl token` (as an external issuer's would be)
    with serve(world) as live:
        assert (await post_initialize(live.mcp_url, token)).status_code == 200
        assert "not minted here" in mcp_acl(world, "token", "revoke", jti_of(token)).stdout
        assert_revoked_answer(await post_initialize(live.mcp_url, token))


async def test_revoking_a_user_refuses_its_tokens_and_no_one_elses(world):
    alice, alice_too, bob = cli_token(world, "alice"), cli_token(world, "alice", "--client", "ollama-agent"), cli_token(world, "bob")
    with serve(world) as live:
        assert "revoked 2 live access tokens" in mcp_acl(world, "token", "revoke", "--user", "alice").stdout
        for token in (alice, alice_too):
            assert_revoked_answer(await post_initialize(live.mcp_url, token))
        async with connect(live.mcp_url, bob, mode="auto") as client:
            assert text_of(await client.call_tool("files.list", {})) != ""
        # A token minted after the revocation works: the user may sign in again.
        assert (await post_initialize(live.mcp_url, cli_token(world, "alice"))).status_code == 200


async def test_disabling_the_user_or_removing_the_client_revokes_their_tokens(world):
    alice, bob_agent = cli_token(world, "alice"), cli_token(world, "bob", "--client", "ollama-agent")
    with serve(world) as live:
        PolicyAdmin(world.engine, actor="ops").set_user_disabled("alice", True)
        assert_revoked_answer(await post_initialize(live.mcp_url, alice))
        mcp_acl(world, "client", "remove", "ollama-agent")
        assert_revoked_answer(await post_initialize(live.mcp_url, bob_agent))
    rows = world.audit_rows(kind="revocation")
    assert [(r.target, r.subject) for r in rows] == [("user:alice", "ops"), ("client:ollama-agent", getpass.getuser())]
    assert "the user was disabled: 1 live access token revoked" in rows[0].reason


async def test_a_revocation_after_the_door_still_stops_the_call_in_the_admission(world):
    class LateRevocation(RevokedTokens):
        """The bearer guard's lookup answers as before the revocation committed; the admission's is real."""

        async def is_revoked(self, jti: str) -> bool:
            return False

    gateway = world.gateway()
    gateway.revoked = LateRevocation(world.engine, gateway.invoker.standing)
    token = cli_token(world, "alice")
    with serve(world, gateway) as live:
        for mode in ("legacy", "auto"):  # a 2025-11-25 session and a sessionless 2026-07-28 call
            async with connect(live.mcp_url, token, mode=mode) as client:
                await client.list_tools()
                mcp_acl(world, "token", "revoke", jti_of(token))
                with pytest.raises(MCPError, match="revoked"):
                    await client.call_tool("files.read", {"path": "reports/q3.md"})
                with pytest.raises(MCPError, match="revoked"):
                    await client.get_prompt("access-policy")
            token = cli_token(world, "alice")
    assert world.audit_rows(kind="decision", subject="alice") == []  # refused before deciding: nothing ran
    assert REVOKED_MESSAGE.startswith("This access token was revoked")


def test_a_deny_list_that_cannot_be_read_refuses(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'not-initialised.db'}")
    with pytest.raises(StoreError):
        RevokedTokens(engine).check("some-jti")


async def test_a_revocation_holds_on_every_replica_of_the_database(world):
    # Two gateways, each with its own engine and caches, as two `mcp-acl serve` processes would have.
    token = cli_token(world, "alice")
    other = make_engine(world.database_url)
    replica = replace(world, engine=other)
    try:
        with serve(world) as first, serve(replica) as second:
            for live in (first, second):
                assert (await post_initialize(live.mcp_url, token)).status_code == 200
            mcp_acl(world, "token", "revoke", jti_of(token))
            for live in (first, second):
                assert_revoked_answer(await post_initialize(live.mcp_url, token))
    finally:
        other.dispose()
