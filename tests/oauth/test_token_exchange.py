"""Narrowed tokens by token exchange (RFC 8693, RFC 9396 details) on the served app, over real HTTP,
then used by the SDK's own client: the narrowed catalogue, refusals outside it, revocation."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import func, select

from mcp_acl.oauth.exchange import ACCESS_TOKEN_URN, TOKEN_EXCHANGE
from mcp_acl.policy.narrowing import NARROWING_TYPE
from mcp_acl.store import tables as t
from mcp_acl.store.token_ledger import revoke_jti, revoke_party

Q3 = 'args.path.startsWith("reports/q3")'
READ_Q3 = [{"type": NARROWING_TYPE, "targets": ["tool:files.read"], "condition": Q3}]


def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _exchange(oauth, client, subject_token: str, details=READ_Q3, **extra) -> httpx2.Response:
    data = {
        "grant_type": TOKEN_EXCHANGE, "client_id": client.client_id, "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_URN,
        "authorization_details": details if details is None or isinstance(details, str) else json.dumps(details), **extra,
    }
    return oauth.http.post("/token", data={k: v for k, v in data.items() if v is not None})


def _ledger_size(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.access_tokens)).scalar_one()


async def _session(resource: str, token: str, work):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with McpClient(streamable_http_client(resource, http_client=http)) as client:
            return await work(client)


def test_metadata_advertises_the_exchange_and_the_details_type(oauth):
    document = oauth.http.get("/.well-known/oauth-authorization-server").json()
    assert TOKEN_EXCHANGE in document["grant_types_supported"]
    assert document["authorization_details_types_supported"] == [NARROWING_TYPE]


async def test_a_narrowed_token_sees_and_may_use_only_its_narrowing(oauth):
    client = oauth.register()
    parent = oauth.tokens_for(client, "alice")
    response = _exchange(oauth, client, parent["access_token"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["issued_token_type"] == ACCESS_TOKEN_URN and answer["token_type"] == "Bearer"
    assert answer["authorization_details"] == READ_Q3 and "refresh_token" not in answer
    narrowed, before = _claims(answer["access_token"]), _claims(parent["access_token"])
    assert (narrowed["sub"], narrowed["client_id"], narrowed["scope"]) == (before["sub"], before["client_id"], before["scope"])
    assert narrowed["exp"] <= before["exp"] and narrowed["authorization_details"] == READ_Q3

    async def look(mcp):
        tools = (await mcp.list_tools()).tools
        inside = await mcp.call_tool("files.read", {"path": "reports/q3.md"})
        outside = await mcp.call_tool("files.read", {"path": "reports/q4.md"})
        hidden = await mcp.call_tool("files.list", {"path": "reports"})
        prompt = await mcp.get_prompt("access-policy")
        return tools, inside, outside, hidden, prompt

    tools, inside, outside, hidden, prompt = await _session(oauth.resource, answer["access_token"], look)
    assert [tool.name for tool in tools] == ["files.read"]
    assert "narrowed to args.path.startsWith" in tools[0].description
    assert not inside.is_error and "Revenue grew" in inside.content[0].text
    assert outside.is_error and outside.content[0].text.startswith("Refused:")
    assert "outside what this token was narrowed to" in outside.content[0].text
    assert hidden.is_error and "No tool named files.list" in hidden.content[0].text
    assert "Your token is narrowed to tool:files.read" in prompt.messages[0].content.text
    # The token it came from keeps its whole catalogue.
    wide = await _session(oauth.resource, parent["access_token"], lambda mcp: mcp.list_tools())
    assert {tool.name for tool in wide.tools} == {"files.list", "files.read", "files.write", "sql.select"}


async def test_a_narrowing_wider_than_the_user_gains_nothing(oauth):
    client = oauth.register()
    parent = oauth.tokens_for(client, "bob")
    everything = [{"type": NARROWING_TYPE, "targets": ["tool:*", "resource:*", "prompt:*"]}]
    answer = _exchange(oauth, client, parent["access_token"], everything).json()

    async def look(mcp):
        return (await mcp.list_tools()).tools, await mcp.call_tool("files.read", {"path": "reports/q3.md"})

    tools, read = await _session(oauth.resource, answer["access_token"], look)
    assert [tool.name for tool in tools] == ["files.list"]
    assert read.is_error


def test_revoking_the_sign_in_revokes_the_narrowed_token(oauth_any):
    oauth = oauth_any
    client = oauth.register()
    parent = oauth.tokens_for(client, "alice")
    narrowed = _exchange(oauth, client, parent["access_token"]).json()["access_token"]
    with oauth.engine.connect() as conn:
        row = conn.execute(select(t.access_tokens).where(t.access_tokens.c.jti == _claims(narrowed)["jti"])).one()
        parent_row = conn.execute(select(t.access_tokens).where(t.access_tokens.c.jti == _claims(parent["access_token"])["jti"])).one()
    assert (row.subject, row.client_id, row.family_id) == ("alice", client.client_id, parent_row.family_id)
    with oauth.engine.begin() as conn:
        assert revoke_party(conn, family=parent_row.family_id) == 2
    refused = oauth.http.post("/mcp", headers={"Authorization": f"Bearer {narrowed}"}, json={})
    assert refused.status_code == 401 and "revoked" in refused.json()["error_description"]


def _bad(oauth, client, token, details=READ_Q3, **extra):
    before = _ledger_size(oauth.engine)
    response = _exchange(oauth, client, token, details, **extra)
    assert response.status_code in (400, 401), response.text
    assert _ledger_size(oauth.engine) == before, "a refused exchange recorded a token"
    return response.json()


@pytest.mark.parametrize(
    "details, error, says",
    [
        (None, "invalid_authorization_details", "Missing 'authorization_details'"),
        ("[{", "invalid_authorization_details", "not valid JSON"),
        ({"type": NARROWING_TYPE}, "invalid_authorization_details", "non-empty JSON array"),
        ([{"type": "payment_initiation", "targets": ["tool:a"]}], "invalid_authorization_details", "only 'mcp-acl-narrowing'"),
        ([{"type": NARROWING_TYPE, "targets": ["files.read"]}], "invalid_authorization_details", "needs a kind"),
        ([{"type": NARROWING_TYPE, "targets": ["tool:a"], "locations": ["x"]}], "invalid_authorization_details", "unknown field"),
        ([{"type": NARROWING_TYPE, "targets": ["tool:a"], "condition": 'args.p.startswith("x")'}],
         "invalid_authorization_details", "did you mean startsWith"),
    ],
)
def test_bad_details_are_refused(oauth, details, error, says):
    client = oauth.register()
    parent = oauth.tokens_for(client)
    answer = _bad(oauth, client, parent["access_token"], details)
    assert answer["error"] == error and says in answer["error_description"]


def test_bad_exchange_requests_are_refused(oauth):
    client, other = oauth.register(), oauth.register()
    parent = oauth.tokens_for(client)["access_token"]
    assert _bad(oauth, client, "not.a.token")["error"] == "invalid_grant"
    assert "another client" in _bad(oauth, other, parent)["error_description"]
    assert _bad(oauth, client, parent, actor_token=parent, actor_token_type=ACCESS_TOKEN_URN)["error"] == "invalid_request"
    assert _bad(oauth, client, parent, subject_token_type="urn:ietf:params:oauth:token-type:id_token")["error"] == "invalid_request"
    assert _bad(oauth, client, parent, requested_token_type="urn:ietf:params:oauth:token-type:refresh_token")["error"] == "invalid_request"
    assert _bad(oauth, client, parent, scope="mcp admin")["error"] == "invalid_scope"
    assert _bad(oauth, client, parent, audience="https://elsewhere.example/mcp")["error"] == "invalid_target"
    assert _bad(oauth, client, parent, resource="https://elsewhere.example/mcp")["error"] == "invalid_target"
    narrowed = _exchange(oauth, client, parent).json()["access_token"]
    assert "already narrowed" in _bad(oauth, client, narrowed)["error_description"]
    revoke_jti(oauth.engine, _claims(parent)["jti"])
    assert "revoked" in _bad(oauth, client, parent)["error_description"]


def test_a_token_not_on_record_is_not_exchanged(oauth):
    client = oauth.register()
    parent = oauth.tokens_for(client)["access_token"]
    with oauth.engine.begin() as conn:
        conn.execute(t.access_tokens.delete())
    assert "not one this issuer has on record" in _bad(oauth, client, parent)["error_description"]


async def test_a_confidential_service_client_narrows_its_own_token(oauth):
    secret = oauth.make_confidential("ollama-agent")
    auth = httpx2.BasicAuth("ollama-agent", secret)
    service = oauth.http.post("/token", data={"grant_type": "client_credentials"}, auth=auth).json()["access_token"]
    details = json.dumps([{"type": NARROWING_TYPE, "targets": ["tool:sql.*"]}])
    exchange = {"grant_type": TOKEN_EXCHANGE, "subject_token": service, "subject_token_type": ACCESS_TOKEN_URN,
                "authorization_details": details}
    assert oauth.http.post("/token", data=exchange).status_code == 401  # the client must authenticate
    response = oauth.http.post("/token", data=exchange, auth=auth)
    assert response.status_code == 200, response.text
    narrowed = response.json()["access_token"]
    assert _claims(narrowed)["sub"] == "ollama-agent"
    tools = await _session(oauth.resource, narrowed, lambda mcp: mcp.list_tools())
    assert [tool.name for tool in tools.tools] == ["sql.select"]
