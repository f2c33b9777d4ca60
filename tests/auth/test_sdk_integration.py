"""The guard in front of the real mcp SDK server, called by the real SDK client over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from mcp_acl.auth import SigningKeys, build_verifier, mint_access_token, protect
from mcp_acl.config import Settings
from mcp_acl.store import make_engine, upgrade

RESOURCE = "http://127.0.0.1:8000/mcp"


@pytest.fixture
def sdk_server(sqlite_url, serve) -> Iterator[tuple[str, SigningKeys, Settings]]:
    """An MCPServer with a `whoami` tool, served behind `protect`."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    settings = Settings(database_url=sqlite_url, resource_url=RESOURCE)
    server = MCPServer("whoami-test")

    @server.tool()
    def whoami() -> str:
        """The subject and client of the caller's token."""
        token = get_access_token()
        return f"{token.subject} via {token.client_id}" if token else "nobody"

    app = protect(server.streamable_http_app(), build_verifier(settings, engine), settings)
    yield serve(app, lifespan="on"), SigningKeys(engine), settings
    engine.dispose()


def token_for(keys: SigningKeys, settings: Settings, subject: str) -> str:
    return mint_access_token(
        keys,
        issuer=settings.embedded_issuer_url,
        audience=RESOURCE,
        subject=subject,
        client_id="sdk-client",
        scopes=["mcp"],
        ttl=timedelta(minutes=5),
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_with_a_token_reaches_the_tool_and_the_tool_sees_the_token(sdk_server, mode):
    url, keys, settings = sdk_server
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token_for(keys, settings, 'alice')}"})
    async with http, Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as client:
        result = await client.call_tool("whoami", {})
    assert result.content[0].text == "alice via sdk-client"


async def test_sdk_client_without_a_token_is_refused_with_401(sdk_server):
    url, _, _ = sdk_server
    response = httpx2.post(url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]
