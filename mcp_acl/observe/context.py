"""What a request's log lines and spans know about it, handed from the HTTP edge to the MCP handlers.

Stateful (2025-11-25) sessions handle their requests in the session's own
task, not the HTTP request's, so context variables set at the edge are not
seen there. The edge therefore leaves the trace context in the ASGI scope,
and `RequestScope` (first in the server's middleware) puts it back, with
the JSON-RPC request id and a short session id for the log lines.
Installed only when tracing or JSON logs are on.
"""

from __future__ import annotations

import contextvars
from typing import Any

from mcp_acl.observe.tracing import TRACE_CONTEXT_KEY

SESSION_HEADER = "mcp-session-id"
# Enough to tell sessions apart in the logs, as the rest of the gateway logs them (12 characters).
SESSION_SHOWN = 12

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("mcp_acl_request_id", default=None)
session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("mcp_acl_session_id", default=None)


class RequestScope:
    """Server middleware: the request's trace context and log ids around its handler."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        request = getattr(ctx, "request", None)
        scope = getattr(request, "scope", None) or {}
        parent = scope.get(TRACE_CONTEXT_KEY)
        session = request.headers.get(SESSION_HEADER) if request is not None else None
        rid = request_id.set(None if ctx.request_id is None else str(ctx.request_id)[:64])
        sid = session_id.set(session[:SESSION_SHOWN] if session else None)
        token = None
        if parent is not None:
            from opentelemetry import context

            token = context.attach(parent)
        try:
            return await call_next(ctx)
        finally:
            if token is not None:
                from opentelemetry import context

                context.detach(token)
            session_id.reset(sid)
            request_id.reset(rid)
