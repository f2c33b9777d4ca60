"""Tokens for the agent: given, or the client credentials grant found through OAuth metadata."""

from __future__ import annotations

import pytest

from mcp_acl.agent.credentials import ClientCredentials, StaticToken, token_source
from mcp_acl.agent.errors import CredentialsRefused, DiscoveryFailed, SettingsError
from mcp_acl.agent.gateway_session import GatewaySession
from tests.support.oauth_resource import OAuthResource
from tests.auth.support import LoopbackServer

SECRET = "s3cret/with:odd chars"


@pytest.fixture
def resource() -> OAuthResource:
    """An MCP server with OAuth metadata and a client-credentials token endpoint."""
    return OAuthResource(client_secrets={"reporter": SECRET})


@pytest.fixture
def resource_url(resource):
    """Its MCP endpoint, served on 127.0.0.1, port 0."""
    with LoopbackServer(resource.app, lifespan="on") as base:
        yield base + "/mcp"


async def test_client_credentials_are_exchanged_at_the_discovered_token_endpoint(resource, resource_url):
    source = ClientCredentials(resource_url, "reporter", SECRET)
    async with GatewaySession(resource_url, source) as gateway:
        assert [tool.name for tool in await gateway.tools()] == ["ping"]
    assert source.token_endpoint == resource_url.removesuffix("/mcp") + "/token"
    assert resource.token_requests == [{"grant_type": "client_credentials", "resource": resource_url,
                                        "scope": "mcp", "client_id": "reporter"}]


async def test_the_secret_travels_only_in_the_basic_header(resource, resource_url):
    await ClientCredentials(resource_url, "reporter", SECRET).token()
    assert SECRET not in str(resource.token_requests)


async def test_token_is_reused_until_it_nears_expiry(resource, resource_url):
    source = ClientCredentials(resource_url, "reporter", SECRET)
    assert await source.token() == await source.token()
    assert len(resource.token_requests) == 1


async def test_a_given_scope_replaces_the_resource_default(resource, resource_url):
    await ClientCredentials(resource_url, "reporter", SECRET, scope="mcp reports").token()
    assert resource.token_requests[0]["scope"] == "mcp reports"


async def test_wrong_secret_is_refused_with_the_issuer_reason(resource_url):
    with pytest.raises(CredentialsRefused) as caught:
        await ClientCredentials(resource_url, "reporter", "wrong").token()
    message = str(caught.value)
    assert "refused client 'reporter' (invalid_client: unknown client or bad secret)" in message
    assert "wrong" not in message.replace("refused", "")


async def test_gateway_without_oauth_metadata_fails_discovery(ollama_url):
    with pytest.raises(DiscoveryFailed) as caught:
        await ClientCredentials(ollama_url + "/mcp", "reporter", SECRET).token()
    assert "use --token instead" in str(caught.value)


async def test_a_given_token_is_used_as_is():
    assert await token_source("http://x/mcp", token="abc").token() == "abc"
    assert isinstance(token_source("http://x/mcp", client_id="a", client_secret="b"), ClientCredentials)
    assert isinstance(token_source("http://x/mcp", token="abc"), StaticToken)


@pytest.mark.parametrize("given", [{}, {"client_id": "a"}, {"client_secret": "b"},
                                   {"token": "t", "client_id": "a", "client_secret": "b"}])
def test_credentials_must_be_a_token_or_a_full_client_pair(given):
    with pytest.raises(SettingsError):
        token_source("http://x/mcp", **given)
