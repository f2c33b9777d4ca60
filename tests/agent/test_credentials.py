"""Tokens for the agent: given, or the client credentials grant found through OAuth metadata."""

from __future__ import annotations

import pytest

from mcp_acl.agent.credentials import ClientCredentials, StaticToken, token_source
from mcp_acl.agent.errors import CredentialsRefused, DiscoveryFailed, SettingsError
from mcp_acl.agent.gateway_session import GatewaySession

SECRET = "s3cret/with:odd chars"


async def test_client_credentials_are_exchanged_at_the_discovered_token_endpoint(mini, mini_server):
    source = ClientCredentials(mini_server.url + "/mcp", "reporter", SECRET)
    async with GatewaySession(mini_server.url + "/mcp", source) as gateway:
        assert await gateway.tools() == []  # a client with no grants sees nothing, but is let in
    assert source.token_endpoint == mini_server.url + "/token"
    assert mini.token_requests == [{"grant_type": "client_credentials", "resource": mini_server.url + "/mcp",
                                    "client_id": "reporter"}]


async def test_the_secret_travels_only_in_the_basic_header(mini, mini_server):
    await ClientCredentials(mini_server.url + "/mcp", "reporter", SECRET).token()
    assert SECRET not in str(mini.token_requests)


async def test_token_is_reused_until_it_nears_expiry(mini, mini_server):
    source = ClientCredentials(mini_server.url + "/mcp", "reporter", SECRET)
    assert await source.token() == await source.token()
    assert len(mini.token_requests) == 1


async def test_scope_is_requested_when_given(mini, mini_server):
    await ClientCredentials(mini_server.url + "/mcp", "reporter", SECRET, scope="mcp").token()
    assert mini.token_requests[0]["scope"] == "mcp"


async def test_wrong_secret_is_refused_with_the_issuer_reason(mini_server):
    with pytest.raises(CredentialsRefused) as caught:
        await ClientCredentials(mini_server.url + "/mcp", "reporter", "wrong").token()
    message = str(caught.value)
    assert "refused client 'reporter' (invalid_client: unknown client or bad secret)" in message
    assert "wrong" not in message.replace("refused", "")


async def test_gateway_without_oauth_metadata_fails_discovery(ollama_server):
    with pytest.raises(DiscoveryFailed) as caught:
        await ClientCredentials(ollama_server.url + "/mcp", "reporter", SECRET).token()
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
