"""The tool side of an endpoint chat: the gateway itself, in-process, for one caller.

The same admission as a tools/call over MCP (gateway/invocation.py:
decide → audit row committed → run → outcome), with the caller's identity
passed in instead of read from an MCP request. The catalogue is the
identity's cached listing; the access-policy prompt is a prompts/get,
decided and audited like any other. No MCP session is involved: each
admission runs the access token's deny-list check first, so a token
revoked during a chat stops its next call.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_acl.agent.errors import GatewayFailed
from mcp_acl.agent.messages import prompt_text
from mcp_acl.gateway.calls import OTHER
from mcp_acl.gateway.runtime import Gateway
from mcp_acl.policy import Identity
from mcp_acl.prompting import ACCESS_POLICY
from mcp_acl.store.lookup import WouldWait

# How GatewayFailed names where the error came from (the model reads only the detail).
IN_PROCESS = "mcp-acl"
LIST_FAILED = "The access policy could not be read, so nothing can be listed."


class LocalGateway:
    """A `ToolSide` (agent/loop.py) that calls the gateway's Invoker directly, as `identity`."""

    def __init__(self, gateway: Gateway, identity: Identity, token_id: str | None) -> None:
        self.gateway = gateway
        self.identity = identity
        revoked = gateway.revoked
        self._check = revoked.admission_check(token_id, None) if revoked is not None else None
        # Never set: a chat is one request, and a refusal already makes the loop refetch.
        self.changed = anyio.Event()

    async def tools(self) -> list[types.Tool]:
        """The identity's tools at the current revision, as tools/list would list them."""
        invoker = self.gateway.invoker

        def listing() -> list[types.Tool]:
            return list(invoker.views.listing(invoker.policies.current(), self.identity, invoker.clock()).tools)

        try:
            cached = self._cached_listing()
            if cached is not None:
                return cached
            # Building a listing filters the whole catalogue: in a worker thread, as tools/list does.
            return await anyio.to_thread.run_sync(listing)
        except Exception:
            raise GatewayFailed(IN_PROCESS, LIST_FAILED) from None

    def _cached_listing(self) -> list[types.Tool] | None:
        # On SQLite the revision is read on the event loop, like an admission, when nothing has to wait.
        invoker = self.gateway.invoker
        if invoker.standing is None:
            return None
        try:
            with invoker.standing.block():
                found = invoker.views.cached(invoker.policies.current(), self.identity, invoker.clock())
        except WouldWait:
            return None
        return list(found.tools) if found is not None else None

    async def policy_prompt(self) -> str | None:
        """The access-policy prompt for the identity (a decided, audited prompts/get), or None if refused."""
        try:
            result = await self.gateway.invoker.get_prompt(self.identity, None, ACCESS_POLICY.name, None, self._check)
        except MCPError:
            return None
        return prompt_text(result) or None

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """One tools/call through the admission; a refused token or session raises GatewayFailed."""
        invoker = self.gateway.invoker
        label = name if name in invoker.catalogue.tools else OTHER
        with self.gateway.calls.running("tools/call", label) as running:
            try:
                result = await invoker.call_tool(self.identity, None, name, arguments, self._check)
            except MCPError as exc:
                running.failed()
                raise GatewayFailed(IN_PROCESS, exc.error.message) from None
            if result.is_error:
                running.failed()
            return result
