"""The gateway session through the SDK client: catalogue, prompt, refused tokens, change notices."""

from __future__ import annotations

import anyio
import pytest

from mcp_acl.agent.credentials import StaticToken
from mcp_acl.agent.errors import GatewayUnreachable, TokenRefused
from mcp_acl.agent.gateway_session import GatewaySession
from tests.agent.test_model import closed_port_url


def session(server, token: str, mode: str = "auto") -> GatewaySession:
    return GatewaySession(server.url + "/mcp", StaticToken(token), mode=mode)


async def test_each_identity_gets_its_own_catalogue(mini_server):
    async with session(mini_server, "tok-alice") as alice, session(mini_server, "tok-bob") as bob:
        assert [t.name for t in await alice.tools()] == ["notes.list", "notes.read"]
        assert [t.name for t in await bob.tools()] == ["notes.list", "notes.read"]


async def test_policy_prompt_is_the_identity_text(mini_server):
    async with session(mini_server, "tok-bob") as bob:
        assert await bob.policy_prompt() == (
            "You act for bob. You may use: notes.list, notes.read. A refused call says why; do not retry it.")


async def test_missing_prompt_gives_none(mini, mini_server):
    mini.prompt = False
    async with session(mini_server, "tok-alice") as alice:
        assert await alice.policy_prompt() is None


async def test_unknown_token_is_reported_as_rejected(mini_server):
    with pytest.raises(TokenRefused) as caught:
        async with session(mini_server, "tok-mallory"):
            pass
    assert "rejected the token (401)" in str(caught.value) and mini_server.url in str(caught.value)


async def test_token_without_the_scope_is_reported_as_refused(mini, mini_server):
    mini.tokens["tok-narrow"] = "alice"
    mini.token_scopes["tok-narrow"] = []
    with pytest.raises(TokenRefused) as caught:
        async with session(mini_server, "tok-narrow"):
            pass
    assert "(403)" in str(caught.value)


async def test_gateway_down_is_reported_with_its_url():
    url = closed_port_url()
    with pytest.raises(GatewayUnreachable) as caught:
        async with GatewaySession(url + "/mcp", StaticToken("t")):
            pass
    assert url in str(caught.value)


@pytest.mark.parametrize(("mode", "era"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_revoke_marks_the_catalogue_changed_in_both_eras(mini, mini_server, mode, era):
    async with session(mini_server, "tok-alice", mode) as alice:
        assert alice.client.protocol_version == era
        await alice.tools()
        assert not alice.changed.is_set()
        mini_server.call(mini.revoke("alice", "notes.read"))
        with anyio.fail_after(10):  # a hang guard, not a timing assertion
            await alice.changed.wait()
        assert [t.name for t in await alice.tools()] == ["notes.list"]
        assert not alice.changed.is_set()
