"""A small real MCP server behind OAuth with the client credentials grant, for token tests.

The gateway's embedded issuer has no token endpoint yet, so this stand-in
publishes what a gateway with one would: RFC 9728 protected-resource
metadata naming an authorization server, that server's RFC 8414 metadata,
and a `/token` endpoint for `grant_type=client_credentials` with HTTP Basic
client authentication. Tokens it issues open its MCP endpoint (one tool).
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import mcp_types as types
from mcp.server import Server
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PING = types.Tool(name="ping", description="Answer pong.", input_schema={"type": "object", "properties": {}})


@dataclass
class OAuthResource:
    """The server: `app` to serve; `client_secrets` it accepts; `token_requests` it received."""

    client_secrets: dict[str, str]
    # Form fields and the client id of each token request (never the secret).
    token_requests: list[dict[str, str]] = field(default_factory=list)
    issued: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        server = Server("oauth-resource", on_list_tools=self._list_tools)
        self.app = server.streamable_http_app(
            auth=AuthSettings(issuer_url="http://127.0.0.1/", resource_server_url=None, required_scopes=["mcp"]),
            token_verifier=self,
            custom_starlette_routes=[
                Route("/.well-known/oauth-protected-resource/mcp", self._resource_metadata),
                Route("/.well-known/oauth-authorization-server", self._issuer_metadata),
                Route("/token", self._token, methods=["POST"]),
            ],
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        """TokenVerifier: only tokens this server issued."""
        client = self.issued.get(token)
        if client is None:
            return None
        return AccessToken(token=token, client_id=client, scopes=["mcp"], expires_at=int(time.time()) + 600)

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[PING])

    async def _resource_metadata(self, request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"resource": f"{base}/mcp", "authorization_servers": [base], "scopes_supported": ["mcp"]})

    async def _issuer_metadata(self, request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "issuer": base, "token_endpoint": f"{base}/token", "authorization_endpoint": f"{base}/authorize",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def _token(self, request: Request) -> JSONResponse:
        form = await request.form()
        auth = request.headers.get("authorization", "")
        client_id = secret = None
        if auth.startswith("Basic "):
            pair = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = (unquote(p) for p in pair.partition(":"))
        self.token_requests.append({k: str(v) for k, v in form.items()} | {"client_id": client_id or ""})
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if client_id is None or self.client_secrets.get(client_id) != secret:
            return JSONResponse({"error": "invalid_client", "error_description": "unknown client or bad secret"},
                                status_code=401)
        token = secrets.token_urlsafe(16)
        self.issued[token] = client_id
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 600})
