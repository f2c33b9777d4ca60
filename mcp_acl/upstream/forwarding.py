"""Forwarding a resources/read or prompts/get to an upstream: its failures become one sentence (a ToolError).

The same sentences as a forwarded tools/call (see tools.py): too slow, down,
or a protocol error in the upstream's own words. Nothing here ever answers
in the upstream's place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from mcp_acl.gateway.specs import ToolError
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.tools import timed_out, unreachable

log = logging.getLogger(__name__)

T = TypeVar("T")


async def forward(conn: UpstreamConnection, what: str, request: Callable[..., Awaitable[T]]) -> T:
    """`await request(client)` on the upstream's open session; `what` (e.g. `read note://a`) names it in the log.

    Raises ToolError with one sentence when the upstream is down, too slow,
    or answers with a protocol error (e.g. an unknown URI, a missing argument).
    """
    up = conn.upstream
    client = conn.client
    if client is None:
        raise ToolError(unreachable(up.name))
    try:
        # The client's read timeout (the upstream's) answers first; the cancel scope is a backstop.
        with anyio.fail_after(up.timeout_seconds * 2):
            return await request(client)
    except TimeoutError:
        raise ToolError(timed_out(up.name, up.timeout_seconds)) from None
    except MCPError as exc:
        if exc.error.code == REQUEST_TIMEOUT:
            raise ToolError(timed_out(up.name, up.timeout_seconds)) from None
        if exc.error.code == CONNECTION_CLOSED:
            conn.broken()
            raise ToolError(unreachable(up.name)) from None
        raise ToolError(f'the upstream "{up.name}" refused the request: {exc.error.message}') from None
    except Exception as exc:
        log.warning("upstream %s: %s failed: %s", up.name, what, exc.__class__.__name__)
        conn.broken()
        raise ToolError(unreachable(up.name)) from None
