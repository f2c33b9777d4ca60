"""A small real MCP server that acts like mcp-acl's gateway, for agent tests.

It is the SDK's low-level `Server` over Streamable HTTP with bearer tokens:
each user sees only the tools a rule grants, each call is decided again with
its arguments (a refusal is an `isError` result with one sentence), it serves
an `access-policy` prompt per user, counts handler runs, and tells sessions
when a revoke changes their catalogue (2025-11-25 sessions by
`notifications/tools/list_changed`, 2026-07-28 ones on `subscriptions/listen`).
It also serves the OAuth metadata and a client-credentials token endpoint.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import mcp_types as types
from mcp.server import Server
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

NOTES = {"reports/q3.md": "Q3 revenue grew 12%.", "public/readme.md": "Welcome."}

TOOLS = [
    types.Tool(name="notes.list", description="List the notes.", input_schema={"type": "object", "properties": {}}),
    types.Tool(
        name="notes.read",
        description="Read one note.",
        input_schema={
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Note path, e.g. reports/q3.md"}},
            "required": ["path"],
            "additionalProperties": False,
        },
    ),
    types.Tool(
        name="notes.write",
        description="Write a note.",
        input_schema={
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "text": {"type": "string", "maxLength": 200},
                "mode": {"enum": ["create", "replace"], "default": "create"},
            },
            "required": ["path", "text"],
        },
    ),
]


@dataclass
class Rule:
    """User `user` may see `tool` and call it when `when(args)` holds (always, without `when`)."""

    user: str
    tool: str
    when: Callable[[dict[str, Any]], bool] | None = None
    note: str | None = None


@dataclass
class MiniGateway:
    """The server: `app` to serve, `tokens` (token → user) to hand out, counters to assert on."""

    rules: list[Rule]
    tokens: dict[str, str]
    client_secrets: dict[str, str] = field(default_factory=dict)
    # Scopes per token when not the usual ["mcp"] (e.g. [] to draw a 403).
    token_scopes: dict[str, list[str]] = field(default_factory=dict)
    prompt: bool = True
    handler_runs: Counter[str] = field(default_factory=Counter)
    decisions: list[tuple[str, str, bool]] = field(default_factory=list)
    # The token endpoint's requests (form fields and client id; never the secret).
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sessions: dict[str, list[Any]] = {}
        self._bus = InMemorySubscriptionBus()
        self.server = Server(
            "mini-gateway",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_subscriptions_listen=ListenHandler(self._bus),
        )
        self.app = self.server.streamable_http_app(
            auth=AuthSettings(issuer_url="http://127.0.0.1/", resource_server_url=None, required_scopes=["mcp"]),
            token_verifier=self,
            custom_starlette_routes=[
                Route("/.well-known/oauth-protected-resource/mcp", self._resource_metadata),
                Route("/.well-known/oauth-authorization-server", self._issuer_metadata),
                Route("/token", self._token, methods=["POST"]),
            ],
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        """TokenVerifier: a known token is its user's; anything else is refused."""
        user = self.tokens.get(token)
        if user is None:
            return None
        return AccessToken(token=token, client_id="agent", scopes=self.token_scopes.get(token, ["mcp"]), subject=user,
                           expires_at=int(time.time()) + 3600)

    def _user(self) -> str:
        token = get_access_token()
        if token is None or token.subject is None:
            raise MCPError(types.INVALID_REQUEST, "no identity")
        return token.subject

    def visible(self, user: str) -> list[types.Tool]:
        """The tools `user` may see, in catalogue order."""
        granted = {r.tool for r in self.rules if r.user == user}
        return [t for t in TOOLS if t.name in granted]

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        user = self._user()
        if ctx.session not in self._sessions.setdefault(user, []):
            self._sessions[user].append(ctx.session)
        return types.ListToolsResult(tools=self.visible(user))

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        user = self._user()
        args = dict(params.arguments or {})
        rules = [r for r in self.rules if r.user == user and r.tool == params.name]
        if not rules:
            self.decisions.append((user, params.name, False))
            return _refusal(f"Unknown tool: {params.name}")
        if not any(r.when is None or r.when(args) for r in rules):
            self.decisions.append((user, params.name, False))
            return _refusal(f"Refused: {user} may not call {params.name} with these arguments ({rules[0].note}).")
        self.decisions.append((user, params.name, True))
        self.handler_runs[params.name] += 1
        if params.name == "notes.list":
            return _text("\n".join(NOTES))
        if params.name == "notes.read":
            if args["path"] not in NOTES:
                return _refusal(f"There is no note {args['path']}.")
            return _text(NOTES[args["path"]])
        return _text("written")

    async def _list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[types.Prompt(name="access-policy")] if self.prompt else [])

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        user = self._user()
        if not self.prompt or params.name != "access-policy":
            raise MCPError(types.INVALID_PARAMS, f"unknown prompt {params.name}")
        names = ", ".join(t.name for t in self.visible(user)) or "nothing"
        text = f"You act for {user}. You may use: {names}. A refused call says why; do not retry it."
        return types.GetPromptResult(messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))])

    async def revoke(self, user: str, tool: str) -> None:
        """Drop `user`'s rules for `tool` and tell that user's sessions (run on the server's loop)."""
        self.rules = [r for r in self.rules if not (r.user == user and r.tool == tool)]
        for session in self._sessions.get(user, []):
            try:
                await session.send_tool_list_changed()
            except Exception:
                pass  # a closed session needs no notice
        await self._bus.publish(ToolsListChanged())

    async def _resource_metadata(self, request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"resource": f"{base}/mcp", "authorization_servers": [base]})

    async def _issuer_metadata(self, request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"issuer": base, "token_endpoint": f"{base}/token",
                             "authorization_endpoint": f"{base}/authorize",
                             "grant_types_supported": ["client_credentials"],
                             "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

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
        self.tokens[token] = f"client:{client_id}"
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 600})


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


def _refusal(sentence: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=sentence)], is_error=True)

