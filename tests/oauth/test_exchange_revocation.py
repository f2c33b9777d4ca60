"""Revoking a token by its jti revokes the narrowed tokens exchanged from it: at the next call, on every replica.

Real sign-ins and real token exchange at the served issuer (SQLite and
PostgreSQL); the SDK's client at /mcp of that app; the real `ollama` client
at /ollama of a second app (a replica) over the same database; the revocation
by `mcp-acl token revoke JTI`, as an admin runs it.
"""

from __future__ import annotations

import getpass

import httpx2
import ollama
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import select
from typer.testing import CliRunner

from mcp_acl.app import create_app
from mcp_acl.cli import app as cli_app
from mcp_acl.ollama_endpoint import EndpointSettings
from mcp_acl.store import tables as t
from tests.auth.support import LoopbackServer
from tests.gateway.harness import connect, text_of
from tests.oauth.test_token_exchange import _claims, _exchange
from tests.support.ollama_double import OllamaDouble, call, say

Q3 = "reports/q3.md"
MODEL = "qwen3:4b"
runner = CliRunner()


def revoke(oauth, jti: str) -> str:
    """`mcp-acl token revoke JTI --database URL` in this process; what it said."""
    result = runner.invoke(cli_app, ["token", "revoke", jti, "--database", oauth.world.database_url], prog_name="mcp-acl")
    assert result.exit_code == 0, result.output
    return result.stdout


async def chat_reads_q3(url: str, double: OllamaDouble, token: str) -> str:
    """A chat at /ollama whose model reads the Q3 report; what the model was told the call returned."""
    double.add(call("files.read", path=Q3), say("Q3 went well."))
    async with ollama.AsyncClient(host=url, headers={"Authorization": f"Bearer {token}"}) as app:
        answer = await app.chat(MODEL, messages=[{"role": "user", "content": "How did Q3 go?"}])
    assert answer.message.content == "Q3 went well."
    return double.chats[-1]["messages"][-1]["content"]


async def assert_refused_at_ollama(url: str, token: str) -> None:
    with pytest.raises(ollama.ResponseError) as refused:
        async with ollama.AsyncClient(host=url, headers={"Authorization": f"Bearer {token}"}) as app:
            await app.chat(MODEL, messages=[{"role": "user", "content": "How did Q3 go?"}])
    assert refused.value.status_code == 401
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(url + "/api/chat", headers={"Authorization": f"Bearer {token}"}, json={"model": MODEL, "messages": []})
    assert answer.status_code == 401 and "revoked" in answer.json()["error_description"]


def assert_refused_at_mcp(oauth, token: str) -> None:
    refused = oauth.http.post("/mcp", headers={"Authorization": f"Bearer {token}"}, json={})
    assert refused.status_code == 401 and "revoked" in refused.json()["error_description"]


@pytest.fixture
def replica(oauth_any):
    """A second app with /ollama on the same database (as another replica would be), in front of the scripted Ollama."""
    double = OllamaDouble()
    with LoopbackServer(double.app) as upstream:
        app = create_app(oauth_any.settings, oauth_any.engine, ollama=EndpointSettings(upstream))
        with LoopbackServer(app, lifespan="on") as base:
            yield base + "/ollama", double


async def test_revoking_the_parent_refuses_its_narrowed_token_at_the_next_call_everywhere(oauth_any, replica):
    oauth, (ollama_url, double) = oauth_any, replica
    client = oauth.register()
    parent = oauth.tokens_for(client, "alice")["access_token"]
    narrowed = _exchange(oauth, client, parent).json()["access_token"]
    # Another sign-in of the same user, and a token narrowed from it: neither comes from the revoked token.
    other = oauth.tokens_for(client, "alice")["access_token"]
    other_narrowed = _exchange(oauth, client, other).json()["access_token"]
    parent_jti, narrowed_jti = _claims(parent)["jti"], _claims(narrowed)["jti"]

    async with connect(oauth.resource, narrowed) as mcp:
        assert text_of(await mcp.call_tool("files.read", {"path": Q3})).startswith("# Q3")
        assert "Revenue grew" in await chat_reads_q3(ollama_url, double, narrowed)

        said = revoke(oauth, parent_jti)
        # The very next call of the live session is refused, as is a new request, on either replica.
        with pytest.raises(MCPError):
            await mcp.call_tool("files.read", {"path": Q3})
    assert_refused_at_mcp(oauth, narrowed)
    assert_refused_at_mcp(oauth, parent)
    await assert_refused_at_ollama(ollama_url, narrowed)
    assert f"revoked token {parent_jti} (alice via {client.client_id}" in said
    assert "and 1 narrowed token exchanged from it" in said

    # Tokens not exchanged from the revoked one keep working.
    async with connect(oauth.resource, other) as mcp:
        assert text_of(await mcp.call_tool("files.read", {"path": Q3})).startswith("# Q3")
    assert "Revenue grew" in await chat_reads_q3(ollama_url, double, other_narrowed)

    [row] = oauth.world.audit_rows(kind="revocation")
    assert row.target == f"token:{parent_jti}" and row.action == "revoke" and row.subject == getpass.getuser()
    assert "1 narrowed token exchanged from it" in row.reason
    at = t.access_tokens
    with oauth.engine.connect() as conn:
        child = conn.execute(select(at).where(at.c.jti == narrowed_jti)).one()
    assert child.parent_jti == parent_jti and child.revoked_at is not None and child.revoked_by == getpass.getuser()


async def test_the_cascade_goes_down_only_and_reaches_every_sibling(oauth):
    client = oauth.register()
    parent = oauth.tokens_for(client, "alice")["access_token"]
    first, second = (_exchange(oauth, client, parent).json()["access_token"] for _ in range(2))
    # Revoking a narrowed token leaves the token it came from, and its sibling, alone.
    assert "narrowed token" not in revoke(oauth, _claims(first)["jti"])
    assert_refused_at_mcp(oauth, first)
    for token in (parent, second):
        async with connect(oauth.resource, token) as mcp:
            assert text_of(await mcp.call_tool("files.read", {"path": Q3})).startswith("# Q3")
    # Revoking the parent reaches the sibling still live (the one already revoked is not counted again).
    said = revoke(oauth, _claims(parent)["jti"])
    assert_refused_at_mcp(oauth, second)
    assert "and 1 narrowed token exchanged from it" in said
