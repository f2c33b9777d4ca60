"""The MCP server: the SDK's low-level `Server` with handlers that filter and decide per caller.

Each handler reads the caller's identity once, from the edge, and passes it
inward. Lists come from the identity's cached listing at the current
revision; tools/call, resources/read and prompts/get go through the
`Invoker` (decide, audit, run). A policy that cannot be read fails the
request; it never falls back to showing or allowing anything.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
import mcp_types as types
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError

import mcp_acl
from mcp_acl.gateway.calls import OTHER, CallLedger
from mcp_acl.gateway.edge import NO_IDENTITY, CallerEdge, CallerUnknown
from mcp_acl.gateway.guard import SessionGuard, pending_check
from mcp_acl.gateway.holds import channel_of
from mcp_acl.gateway.invocation import Invoker
from mcp_acl.gateway.listen import IdentityBus
from mcp_acl.gateway.notifier import Notifier
from mcp_acl.gateway.revoked import RevokedTokens
from mcp_acl.gateway.views import Listing
from mcp_acl.policy import Identity

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "mcp-acl shows you only the tools, resources and prompts you may use, and checks every call "
    "again when you make it. Get the prompt `access-policy` for your limits. A refused call returns "
    "an error starting with 'Refused:' that says what was refused and why."
)


class GatewayServer(Server[Any]):
    """The low-level server, announcing list_changed on the 2025-11-25 handshake."""

    listen_streams: ListenHandler | None = None

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        """The handshake's options; listChanged is true because the notifier sends them."""
        everything = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        return super().create_initialization_options(
            notification_options or everything, experimental_capabilities, extensions
        )


def build_server(
    invoker: Invoker, edge: CallerEdge, guard: SessionGuard, notifier: Notifier, calls: CallLedger | None = None,
    revoked: RevokedTokens | None = None,
) -> GatewayServer:
    """The MCP server for one transport; `edge` says how callers and sessions are found, `calls` counts the calls, `revoked` which tokens are."""
    ledger = calls if calls is not None else CallLedger()

    def admission_check(ctx: ServerRequestContext):
        # The deny-list lookup joins the session check at the head of the admission.
        session_check = pending_check.get()
        return session_check if revoked is None else revoked.admission_check(edge.token_id(ctx), session_check)

    def caller(ctx: ServerRequestContext) -> Identity:
        try:
            return edge.identity(ctx)
        except CallerUnknown:
            raise MCPError(INVALID_REQUEST, NO_IDENTITY) from None

    def current_listing(identity: Identity) -> Listing:
        return invoker.views.listing(invoker.policies.current(), identity, invoker.clock())

    async def listing(identity: Identity) -> Listing:
        # In a worker thread: the revision is a query, and a listing not in
        # the cache filters the whole catalogue (10,000 tools: ~0.1 s).
        try:
            return await anyio.to_thread.run_sync(current_listing, identity)
        except Exception as exc:
            log.warning("refusing a list: the policy could not be read (%s)", exc.__class__.__name__)
            raise MCPError(INTERNAL_ERROR, "The access policy could not be read, so nothing can be listed.") from None

    async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list((await listing(caller(ctx))).tools))

    async def list_resources(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=list((await listing(caller(ctx))).resources))

    async def list_templates(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=list((await listing(caller(ctx))).templates))

    async def list_prompts(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=list((await listing(caller(ctx))).prompts))

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult:
        # Only catalogue names label the metrics: a made-up name must not grow their label sets.
        label = params.name if params.name in invoker.catalogue.tools else OTHER
        # Only when the caller asked for progress: a forwarded call then asks its upstream for it too.
        progress = ctx.session.report_progress if ctx.meta and ctx.meta.get("progress_token") is not None else None
        with ledger.running("tools/call", label) as call:
            result = await invoker.call_tool(
                caller(ctx), edge.session_id(ctx), params.name, params.arguments, admission_check(ctx), progress=progress,
                channel=channel_of(ctx, params),
            )
            if getattr(result, "is_error", False):
                call.failed()
            return result

    async def read_resource(ctx: ServerRequestContext, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        with ledger.running("resources/read", OTHER):
            return await invoker.read_resource(caller(ctx), edge.session_id(ctx), params.uri, admission_check(ctx))

    async def get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        with ledger.running("prompts/get", OTHER):
            return await invoker.get_prompt(caller(ctx), edge.session_id(ctx), params.name, params.arguments, admission_check(ctx))

    listen = ListenHandler(IdentityBus(edge, notifier))
    server = GatewayServer(
        "mcp-acl",
        version=mcp_acl.__version__,
        instructions=INSTRUCTIONS,
        # Mcp-Param header validation must not look tools up outside the
        # caller's view (that would tell hidden tools from missing ones);
        # our tools declare no such headers, so there is nothing to validate.
        get_tool_input_schema=lambda name: None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_subscriptions_listen=listen,
    )
    # Kept so a graceful shutdown can end the listen streams (they last as long as the client keeps them).
    server.listen_streams = listen
    server.middleware.append(guard)
    return server
