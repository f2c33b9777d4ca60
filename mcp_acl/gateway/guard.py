"""The session check every MCP request on a session passes before any handler runs.

A server middleware (the SDK runs it around every request and notification,
`initialize` included) that:
- records a session the first time it is seen, bound to the caller's identity;
- refuses a request on a killed or ended session, or from another identity
  (the SDK already answers 404 to another credential on an HTTP session;
  this check holds on stdio and survives a change in the SDK);
- registers the session with the notifier so it hears list_changed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import anyio.to_thread
from mcp_types import INTERNAL_ERROR, INVALID_REQUEST
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError

from mcp_acl.gateway.edge import CallerEdge, CallerUnknown
from mcp_acl.gateway.invocation import utcnow
from mcp_acl.gateway.notifier import Notifier
from mcp_acl.gateway.sessions import TOUCH_INTERVAL, SessionRefused, SessionStore
from mcp_acl.policy import Identity

log = logging.getLogger(__name__)


async def _send_list_changed(session: ServerSession, kind: str) -> None:
    if kind == "tools":
        await session.send_tool_list_changed()
    elif kind == "resources":
        await session.send_resource_list_changed()
    else:
        await session.send_prompt_list_changed()


class SessionGuard:
    """`ServerMiddleware` binding sessions to identities and refusing ended ones."""

    def __init__(self, edge: CallerEdge, store: SessionStore, notifier: Notifier) -> None:
        self.edge = edge
        self.store = store
        self.notifier = notifier
        self._touched: dict[str, datetime] = {}

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        session_id = self.edge.session_id(ctx)
        if session_id is None:
            return await call_next(ctx)
        is_request = ctx.request_id is not None
        try:
            identity = self.edge.identity()
            await anyio.to_thread.run_sync(self._admit, session_id, identity)
        except (SessionRefused, CallerUnknown) as exc:
            if not is_request:
                return None  # a notification on a refused session is dropped
            raise MCPError(INVALID_REQUEST, str(exc)) from None
        except Exception as exc:
            log.warning("refusing a request on session %s: %s", session_id[:12], exc.__class__.__name__)
            if not is_request:
                return None
            raise MCPError(INTERNAL_ERROR, "The session could not be checked, so the request is refused.") from None
        if not self.notifier.watching(session_id):
            session = ctx.session
            self.notifier.watch(session_id, identity, lambda kind: _send_list_changed(session, kind))
        return await call_next(ctx)

    def _admit(self, session_id: str, identity: Identity) -> None:
        self.store.admit(session_id, identity, self.edge.transport)
        now = utcnow()
        last = self._touched.get(session_id)
        if last is None:
            self._touched[session_id] = now
        elif now - last >= TOUCH_INTERVAL:
            self.store.touch(session_id, now)
            self._touched[session_id] = now

    def forget(self, session_id: str) -> None:
        """Drop what is kept in memory about an ended session."""
        self._touched.pop(session_id, None)
        self.notifier.unwatch(session_id)
