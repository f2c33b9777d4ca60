"""The gateway side: one MCP session to mcp-acl, as the caller, through the SDK client.

It lists the identity's catalogue, fetches its `access-policy` prompt, calls
tools, and notes when the gateway says the catalogue changed: on a
2025-11-25 session the `notifications/tools/list_changed` arrives on the GET
stream; on 2026-07-28 the session holds a `subscriptions/listen` stream. Both
set `changed`, and the agent refetches before the next model turn.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.auth.utils import extract_field_from_www_auth
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_acl.agent.credentials import BearerAuth, TokenSource
from mcp_acl.agent.errors import AgentError, GatewayFailed, GatewayUnreachable, TokenRefused
from mcp_acl.agent.messages import prompt_text

POLICY_PROMPT = "access-policy"
_MAX_PAGES = 100


class GatewaySession:
    """An MCP session to the gateway with the caller's bearer token; `async with` it."""

    def __init__(self, url: str, tokens: TokenSource, *, mode: str = "auto") -> None:
        self.url = url
        self._tokens = tokens
        self._mode = mode
        self._stack: AsyncExitStack | None = None
        self._client: Client | None = None
        self._refusal: tuple[int, str | None] | None = None
        self.changed = anyio.Event()

    async def __aenter__(self) -> "GatewaySession":
        async with AsyncExitStack() as stack:
            try:
                await self._open(stack)
            except Exception as exc:
                raise self._translate(exc) from None
            self._stack = stack.pop_all()
        return self

    async def _open(self, stack: AsyncExitStack) -> None:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                auth=BearerAuth(self._tokens),
                timeout=httpx2.Timeout(30.0, read=300.0),
                event_hooks={"response": [self._watch]},
            )
        )
        client = Client(
            streamable_http_client(self.url, http_client=http),
            mode=self._mode,
            # Catalogues are per identity and change under us: always ask the gateway.
            cache=None,
            message_handler=self._on_message,
        )
        await stack.enter_async_context(client)
        self._client = client
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tasks.cancel_scope.cancel)
            await tasks.start(self._listen)

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    @property
    def client(self) -> Client:
        """The SDK client (for callers that need more than this class offers)."""
        if self._client is None:
            raise RuntimeError("GatewaySession is not open")
        return self._client

    async def tools(self) -> list[types.Tool]:
        """The identity's whole catalogue, every page; clears `changed`."""
        self.changed = anyio.Event()
        found: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await self._guard(self.client.list_tools(cursor=cursor))
            found.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return found

    async def policy_prompt(self) -> str | None:
        """The identity's `access-policy` prompt as text, or None when the gateway offers none."""
        try:
            result = await self._guard(self.client.get_prompt(POLICY_PROMPT))
        except GatewayFailed:
            return None
        return prompt_text(result) or None

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """tools/call; a protocol error raises `GatewayFailed` (the loop tells the model)."""
        return await self._guard(self.client.call_tool(name, arguments))

    async def _guard(self, request: Any) -> Any:
        try:
            return await request
        except Exception as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: BaseException) -> BaseException:
        """The one error a user can act on, found among the SDK's (grouped) exceptions."""
        if isinstance(exc, AgentError):
            return exc
        if self._refusal is not None:
            return TokenRefused(self.url, *self._refusal)
        leaves = list(_leaves(exc))
        for leaf in leaves:
            if isinstance(leaf, httpx2.ConnectError | httpx2.ConnectTimeout | ConnectionError):
                return GatewayUnreachable(self.url, type(leaf).__name__)
        for leaf in leaves:
            if isinstance(leaf, MCPError):
                return GatewayFailed(self.url, leaf.error.message)
            if isinstance(leaf, httpx2.TransportError):
                return GatewayFailed(self.url, f"the connection broke ({type(leaf).__name__})")
        return exc

    async def _watch(self, response: httpx2.Response) -> None:
        # The SDK turns a 401/403 into a generic JSON-RPC error; remember the real cause.
        if response.status_code in (401, 403) and str(response.request.url).rstrip("/") == self.url.rstrip("/"):
            self._refusal = (response.status_code, extract_field_from_www_auth(response, "error_description"))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification | types.PromptListChangedNotification):
            self.changed.set()

    async def _listen(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold a 2026-07-28 `subscriptions/listen` stream open; each event marks the catalogue changed."""
        started = False
        try:
            async with self.client.listen(tools_list_changed=True, prompts_list_changed=True) as subscription:
                task_status.started()
                started = True
                async for _event in subscription:
                    self.changed.set()
        except (MCPError, SubscriptionLost, TimeoutError):
            # No stream, no push: the agent still refetches after every refusal.
            pass
        finally:
            if not started:
                task_status.started()


def _leaves(exc: BaseException):
    """Every exception inside (possibly nested) exception groups, and their causes."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
        if exc.__cause__ is not None:
            yield from _leaves(exc.__cause__)
