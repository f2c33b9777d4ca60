"""An upstream's tools as catalogue entries: ToolSpecs named NAME.tool whose handlers forward tools/call."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types

from mcp_acl.gateway.specs import CallContext, ToolSpec
from mcp_acl.policy import PolicyError, parse_target
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.forwarding import forward

log = logging.getLogger(__name__)


def forwarder(conn: UpstreamConnection, remote: str):
    """A handler that calls `remote` on the upstream and hands its result back unchanged."""
    up = conn.upstream

    async def call(args: dict[str, Any], ctx: CallContext) -> types.CallToolResult:
        return await forward(
            conn, ctx, f"call to {remote}",
            lambda client: client.call_tool(remote, args, read_timeout_seconds=up.timeout_seconds, progress_callback=ctx.progress),
            refused="call",
        )

    return call


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
