"""An upstream's tools as catalogue entries: ToolSpecs named NAME.tool whose handlers forward tools/call."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, PARSE_ERROR, REQUEST_TIMEOUT

from mcp_acl.gateway.specs import CallContext, ToolError, ToolSpec
from mcp_acl.policy import PolicyError, parse_target
from mcp_acl.upstream import oauth
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.exchange import SessionUnavailable

log = logging.getLogger(__name__)


def timed_out(name: str, seconds: float) -> str:
    """The sentence a caller gets when an upstream is too slow."""
    return f'the upstream "{name}" did not answer within {seconds:g} s; try again later'


def unreachable(name: str) -> str:
    """The sentence a caller gets when an upstream is down."""
    return f'the upstream "{name}" cannot be reached right now; try again later'


def not_mcp(name: str) -> str:
    """The sentence a caller gets when an upstream answers with something that is not MCP (a web page, broken JSON)."""
    return f'the upstream "{name}" answered with something that is not MCP; try again later'


# What the SDK's HTTP transport makes up itself, in place of an answer, when the
# upstream's is not MCP at all (a web page, an error page, broken JSON) or when
# the upstream forgot the session (it restarted).
_GARBLED = ("Unexpected content type", "Server returned an error response", "Failed to parse")
_SESSION_GONE = "Session terminated"


def forwarder(conn: UpstreamConnection, remote: str):
    """A handler that calls `remote` on the upstream and hands its result back unchanged."""
    up = conn.upstream

    async def forward(args: dict[str, Any], ctx: CallContext) -> types.CallToolResult:
        client, over = await calling_session(conn, ctx)
        try:
            # The SDK's read timeout answers first; the cancel scope is a backstop so nothing hangs.
            with anyio.fail_after(up.timeout_seconds * 2):
                return await client.call_tool(remote, args, read_timeout_seconds=up.timeout_seconds, progress_callback=ctx.progress)
        except TimeoutError:
            raise ToolError(timed_out(up.name, up.timeout_seconds)) from None
        except MCPError as exc:
            if exc.error.code == REQUEST_TIMEOUT:
                raise ToolError(timed_out(up.name, up.timeout_seconds)) from None
            if exc.error.code == CONNECTION_CLOSED or exc.error.message == _SESSION_GONE:
                over.broken()
                raise ToolError(unreachable(up.name)) from None
            if over.auth is not None and over.auth.failure is not None:
                # The upstream answered 401: no token could be had, or it refused a fresh one.
                log.warning("upstream %s: call to %s not authorized: %s", up.name, remote, over.auth.failure)
                raise ToolError(oauth.no_token(up.name) if over.auth.token_missing else oauth.refused_token(up.name)) from None
            if exc.error.code == PARSE_ERROR or exc.error.message.startswith(_GARBLED):
                log.warning("upstream %s: call to %s got an answer that is not MCP: %s", up.name, remote, exc.error.message)
                raise ToolError(not_mcp(up.name)) from None
            # The upstream answered with a protocol error (e.g. bad arguments): a clear refusal, not a failure of ours.
            raise ToolError(f'the upstream "{up.name}" refused the call: {exc.error.message}') from None
        except Exception as exc:
            log.warning("upstream %s: call to %s failed: %s", up.name, remote, exc.__class__.__name__)
            over.broken()
            raise ToolError(unreachable(up.name)) from None

    return forward


async def calling_session(conn: UpstreamConnection, ctx: CallContext):
    """The session a call goes over and the connection holding it: the shared one, or the caller's own (token exchange).

    A token that cannot be had, or is about to lapse, is settled here, before
    the call is sent, so the caller gets a sentence rather than a broken session.
    """
    name = conn.upstream.name
    if conn.callers is not None:
        try:
            client, over = await conn.callers.session(ctx.identity)
        except SessionUnavailable as exc:
            raise ToolError(str(exc)) from None
    else:
        client, over = conn.client, conn
        if client is None:
            raise ToolError(unreachable(name))
    if over.auth is not None:
        try:
            await over.auth.ready()
        except oauth.TokenUnavailable as exc:
            log.warning("upstream %s: no token for a call: %s", name, exc)
            raise ToolError(oauth.no_token(name)) from None
    return client, over


async def read_tools(conn: UpstreamConnection) -> list[types.Tool]:
    """The upstream's tool definitions as it lists them now (every page)."""
    client, up = conn.client, conn.upstream
    if client is None:
        return []
    found: list[types.Tool] = []
    cursor = None
    with anyio.fail_after(up.timeout_seconds):
        while True:
            page = await client.list_tools(cursor=cursor)
            found.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return found


def definition(tool: types.Tool) -> dict:
    """What is pinned of a tool: everything a model reads or a client relies on (JSON-ready)."""
    return {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "annotations": tool.annotations.model_dump(mode="json", exclude_none=True) if tool.annotations else None,
    }


def to_spec(conn: UpstreamConnection, tool: types.Tool) -> ToolSpec | None:
    """`tool` as a catalogue entry NAME.tool; None (with a warning) when its name cannot be granted or its schema is not an object."""
    name = f"{conn.upstream.name}.{tool.name}"
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    try:
        parse_target(f"tool:{name}")
    except PolicyError:
        log.warning("upstream %s: tool %r left out: its name cannot be named in a grant", conn.upstream.name, tool.name)
        return None
    if schema.get("type") != "object":
        log.warning("upstream %s: tool %r left out: its input schema is not of type object", conn.upstream.name, tool.name)
        return None
    return ToolSpec(
        name=name, description=tool.description or "", input_schema=schema,
        handler=forwarder(conn, tool.name), title=tool.title,
    )
