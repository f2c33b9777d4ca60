"""The gateway session through the SDK client, against the real gateway: catalogue, prompt, tokens, changes."""

from __future__ import annotations

import anyio
import pytest

from mcp_acl.agent.credentials import StaticToken
from mcp_acl.agent.errors import GatewayUnreachable, TokenRefused
from mcp_acl.agent.gateway_session import GatewaySession
from mcp_acl.store import PolicyAdmin
from tests.agent.test_model import closed_port_url
from tests.support.demo_gateway import sqlite_demo, sqlite_gateway_url  # noqa: F401  (fixtures)


@pytest.fixture
def open_session(sqlite_demo, sqlite_gateway_url):  # noqa: F811
    def opener(user: str | None = None, token: str | None = None, mode: str = "auto") -> GatewaySession:
        return GatewaySession(sqlite_gateway_url, StaticToken(token or sqlite_demo.token(user)), mode=mode)
    return opener


async def test_each_identity_gets_its_own_catalogue(open_session):
    async with open_session("alice") as alice, open_session("bob") as bob:
        assert [t.name for t in await alice.tools()] == [
            "files.list", "files.read", "files.search", "sql.describe", "sql.select", "sql.tables"]
        assert [t.name for t in await bob.tools()] == ["files.list", "files.read"]


async def test_policy_prompt_is_the_identity_text(open_session):
    async with open_session("bob") as bob:
        text = await bob.policy_prompt()
    assert text.startswith("You are acting for user bob (roles: intern) through the client ollama-agent.")


async def test_refused_prompt_gives_none(open_session, sqlite_demo):  # noqa: F811
    PolicyAdmin(sqlite_demo.engine).revoke(sqlite_demo.grant_id("role:intern", "prompt:access-policy"))
    async with open_session("bob") as bob:
        assert await bob.policy_prompt() is None


async def test_a_token_the_gateway_cannot_verify_is_reported_as_rejected(open_session, sqlite_gateway_url):  # noqa: F811
    with pytest.raises(TokenRefused) as caught:
        async with open_session(token="not-a-jwt"):
            pass
    assert "rejected the token (401)" in str(caught.value) and sqlite_gateway_url in str(caught.value)


async def test_a_token_without_the_scope_is_reported_as_refused(open_session, sqlite_demo):  # noqa: F811
    with pytest.raises(TokenRefused) as caught:
        async with open_session(token=sqlite_demo.token("alice", scopes=())):
            pass
    assert "refused the token access (403)" in str(caught.value)


async def test_gateway_down_is_reported_with_its_url():
    url = closed_port_url()
    with pytest.raises(GatewayUnreachable) as caught:
        async with GatewaySession(url + "/mcp", StaticToken("t")):
            pass
    assert url in str(caught.value)


@pytest.mark.parametrize(("mode", "era"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_revoke_marks_the_catalogue_changed_in_both_eras(open_session, sqlite_demo, mode, era):  # noqa: F811
    async with open_session("alice", mode=mode) as alice:
        assert alice.client.protocol_version == era
        await alice.tools()
        assert not alice.changed.is_set()
        PolicyAdmin(sqlite_demo.engine).revoke(sqlite_demo.grant_id("role:analyst", "tool:sql.select"))
        with anyio.fail_after(15):  # a hang guard: the gateway polls the revision about once a second
            await alice.changed.wait()
        assert "sql.select" not in [t.name for t in await alice.tools()]
        assert not alice.changed.is_set()
