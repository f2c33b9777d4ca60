"""Forwarding a request to an upstream: the session it goes over, and its failures as one sentence (a ToolError).

Shared by a forwarded tools/call (tools.py), resources/read (resources.py)
and prompts/get (prompts.py), so each says the same thing when the upstream
is too slow, down, refuses the gateway's token, answers with something that
is not MCP, or refuses the request in its own words. Nothing here ever
answers in the upstream's place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, PARSE_ERROR, REQUEST_TIMEOUT

from mcp_acl.gateway.specs import CallContext, ToolError
from mcp_acl.upstream import oauth
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.exchange import SessionUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


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


async def forward(
    conn: UpstreamConnection, ctx: CallContext, what: str, request: Callable[..., Awaitable[T]], *, refused: str = "request",
) -> T:
    """`await request(client)` on the caller's session to the upstream; `what` (e.g. `read note://a`) names it in the log.

    Raises ToolError with one sentence when it fails; an upstream's protocol
    error (bad arguments, an unknown URI) is `… refused the {refused}: …`.
    """
    up = conn.upstream
    client, over = await calling_session(conn, ctx)
    try:
        # The SDK's read timeout (the upstream's, where the request takes one) answers first;
        # the cancel scope is a backstop so nothing hangs.
        with anyio.fail_after(up.timeout_seconds * 2):
            return await request(client)
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
            log.warning("upstream %s: %s not authorized: %s", up.name, what, over.auth.failure)
            raise ToolError(oauth.no_token(up.name) if over.auth.token_missing else oauth.refused_token(up.name)) from None
        if exc.error.code == PARSE_ERROR or exc.error.message.startswith(_GARBLED):
            log.warning("upstream %s: %s got an answer that is not MCP: %s", up.name, what, exc.error.message)
            raise ToolError(not_mcp(up.name)) from None
        # The upstream answered with a protocol error: a clear refusal, not a failure of ours.
        raise ToolError(f'the upstream "{up.name}" refused the {refused}: {exc.error.message}') from None
    except Exception as exc:
        log.warning("upstream %s: %s failed: %s", up.name, what, exc.__class__.__name__)
        over.broken()
        raise ToolError(unreachable(up.name)) from None
