"""Tokens for the agent: given, or the client credentials grant at the embedded issuer, found by discovery."""

from __future__ import annotations

import base64
import json

import pytest

from mcp_acl.agent.credentials import ClientCredentials, StaticToken, token_source
from mcp_acl.agent.errors import CredentialsRefused, DiscoveryFailed, SettingsError
from mcp_acl.agent.gateway_session import GatewaySession
from tests.oauth.conftest import oauth  # noqa: F401  (fixture: the served app with its embedded issuer)
from tests.oauth.harness import AGENT_TOOLS


def claims(token: str) -> dict:
    """The payload of a JWT, unverified (the gateway verifies; the test only reads)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def agent_secret(oauth):  # noqa: F811
    """ollama-agent made a confidential client; its secret."""
    return oauth.make_confidential("ollama-agent")


async def test_client_credentials_open_the_clients_own_catalogue(oauth, agent_secret):  # noqa: F811
    source = ClientCredentials(oauth.resource, "ollama-agent", agent_secret)
    async with GatewaySession(oauth.resource, source) as gateway:
        assert {tool.name for tool in await gateway.tools()} == AGENT_TOOLS
    assert source.token_endpoint == f"{oauth.base}/token"


async def test_the_token_is_bound_to_the_resource_with_its_required_scope(oauth, agent_secret):  # noqa: F811
    issued = claims(await ClientCredentials(oauth.resource, "ollama-agent", agent_secret).token())
    assert issued["aud"] in (oauth.resource, [oauth.resource]) and issued["scope"] == "mcp"
    assert issued["client_id"] == "ollama-agent"


async def test_token_is_reused_until_it_nears_expiry(oauth, agent_secret):  # noqa: F811
    source = ClientCredentials(oauth.resource, "ollama-agent", agent_secret)
    assert await source.token() == await source.token()


async def test_wrong_secret_is_refused_with_the_issuer_reason(oauth, agent_secret):  # noqa: F811
    with pytest.raises(CredentialsRefused) as caught:
        await ClientCredentials(oauth.resource, "ollama-agent", "wrong").token()
    message = str(caught.value)
    assert "refused client 'ollama-agent' (invalid_client" in message and "check --client-id and the secret" in message
    assert "wrong" not in message


async def test_a_scope_the_issuer_does_not_offer_is_refused(oauth, agent_secret):  # noqa: F811
    with pytest.raises(CredentialsRefused) as caught:
        await ClientCredentials(oauth.resource, "ollama-agent", agent_secret, scope="admin").token()
    assert "invalid_scope" in str(caught.value)


async def test_gateway_without_oauth_metadata_fails_discovery(ollama_url):
    with pytest.raises(DiscoveryFailed) as caught:
        await ClientCredentials(ollama_url + "/mcp", "reporter", "secret").token()
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
