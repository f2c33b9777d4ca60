"""End to end through the real app on loopback: discovery, the whole code
flow, the SDK's own OAuth client, client credentials, an external issuer."""

from __future__ import annotations

import re

import pytest
from joserfc.jwk import RSAKey
from mcp.shared.auth import OAuthMetadata

from mcp_acl.oauth.metadata import SUFFIXES
from tests.auth.support import LoopbackServer, TestIssuer, claims_for
from tests.gateway.harness import connect
from tests.oauth.harness import AGENT_TOOLS, ALICE_TOOLS, BOB_TOOLS, PASSWORDS, sdk_sign_in, start_world


async def tool_names(url: str, token: str) -> set[str]:
    """The tool names the SDK client lists with `token`."""
    async with connect(url, token) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_a_401_leads_to_the_authorization_server_metadata(oauth):
    challenge = oauth.http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert challenge.status_code == 401
    metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge.headers["www-authenticate"]).group(1)
    resource = oauth.http.get(metadata_url).json()
    assert resource["resource"] == oauth.resource
    issuer = resource["authorization_servers"][0]
    for suffix in SUFFIXES:
        document = oauth.http.get(f"{issuer}/.well-known/{suffix}").json()
        server = OAuthMetadata.model_validate(document)
        assert str(server.issuer) == issuer
        assert server.code_challenge_methods_supported == ["S256"]
        assert str(server.registration_endpoint) == f"{issuer}/register"


async def test_code_flow_gives_a_token_that_lists_alice_tools_and_refreshes_with_rotation(oauth_any):
    oauth = oauth_any
    client = oauth.register()
    tokens = oauth.tokens_for(client, "alice")
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "mcp"
    assert await tool_names(oauth.resource, tokens["access_token"]) == ALICE_TOOLS

    refreshed = oauth.refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    assert await tool_names(oauth.resource, second["access_token"]) == ALICE_TOOLS

    replay = oauth.refresh(client, tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The replay revoked the family: the newest refresh token is dead too.
    assert oauth.refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"


async def test_bob_signs_in_and_sees_only_his_tools(oauth):
    client = oauth.register()
    tokens = oauth.tokens_for(client, "bob")
    assert await tool_names(oauth.resource, tokens["access_token"]) == BOB_TOOLS


async def test_sdk_oauth_client_provider_signs_in_on_its_own_and_lists_alice_tools(oauth):
    names, storage = await sdk_sign_in(oauth.resource, "alice", PASSWORDS["alice"])
    assert names == ALICE_TOOLS
    assert storage.client_info is not None and storage.client_info.client_id.startswith("mcp-")
    assert storage.tokens is not None and storage.tokens.refresh_token


async def test_restricted_service_client_sees_only_its_own_grants(oauth):
    secret = oauth.make_confidential("ollama-agent")
    response = oauth.http.post(
        "/token", data={"grant_type": "client_credentials", "resource": oauth.resource},
        auth=("ollama-agent", secret),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert await tool_names(oauth.resource, body["access_token"]) == AGENT_TOOLS


def test_client_credentials_with_a_wrong_secret_is_refused(oauth):
    oauth.make_confidential("ollama-agent")
    response = oauth.http.post("/token", data={"grant_type": "client_credentials"}, auth=("ollama-agent", "wrong"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


@pytest.fixture
def external(sqlite_url, tmp_path):
    """An external issuer (discovery + JWKS) on loopback, and mcp-acl configured to trust it."""
    issuer = TestIssuer(key=RSAKey.generate_key(2048, auto_kid=False))
    server = LoopbackServer(issuer.app())
    issuer.url = server.__enter__()
    world = start_world(sqlite_url, tmp_path / "home", issuer=issuer.issuer, roles_claim="groups")
    try:
        yield issuer, world
    finally:
        world.close()
        world.live.stop()
        world.engine.dispose()
        server.__exit__(None, None, None)


EMBEDDED_PATHS = ["/authorize", "/authorize/login", "/authorize/consent", "/token", "/register", "/revoke",
                  "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


def test_with_an_external_issuer_the_embedded_endpoints_are_gone(external):
    issuer, world = external
    for path in EMBEDDED_PATHS:
        assert world.http.get(path).status_code == 404, path
        assert world.http.post(path, data={"grant_type": "client_credentials"}).status_code in (404, 405), path
    document = world.http.get("/.well-known/oauth-protected-resource/mcp").json()
    assert document["authorization_servers"] == [issuer.issuer]


async def test_external_issuer_tokens_are_accepted_with_the_mapped_roles(external):
    issuer, world = external
    # As Keycloak sends it: typ JWT, a user mcp-acl has never stored, roles in "groups".
    token = issuer.sign(claims_for(issuer.issuer, world.resource, sub="dave", groups=["analyst"]), typ="JWT")
    assert await tool_names(world.resource, token) == ALICE_TOOLS
