"""The session check every MCP request on a session passes before any handler runs.

A server middleware (the SDK runs it around every request and notification,
`initialize` included) that:
- records a session the first time it is seen, bound to the caller's identity;
- refuses a request on a killed or ended session, or from another identity
  (the SDK already answers 404 to another credential on an HTTP session;
  this check holds on stdio and survives a change in the SDK);
- registers the session with the notifier so it hears list_changed (over
  HTTP through the session's outbox, which holds a notice until the
  session's GET stream is open: outbox.py).

For tools/call, resources/read and prompts/get the check is handed to the
invocation through `pending_check`, which runs it first in the admission
that decides and audits the call (on the event loop on SQLite, else in one
worker thread; see Invoker.admit): no separate trip for the check. The
check itself is the same.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from functools import partial
from typing import Any

import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST

from mcp_acl.gateway.edge import NO_IDENTITY, CallerEdge, CallerUnknown
from mcp_acl.gateway.invocation import utcnow
from mcp_acl.gateway.notifier import Notifier
from mcp_acl.gateway.outbox import Outboxes
from mcp_acl.gateway.sessions import TOUCH_INTERVAL, SessionRefused, SessionStore, session_error
from mcp_acl.policy import Identity

log = logging.getLogger(__name__)

INVOCATIONS = frozenset({"tools/call", "resources/read", "prompts/get"})
# How many ended sessions are remembered, so a request that outlives its
# session cannot have it watched again (ids are random, never reused).
_ENDED_MEMORY = 10_000

pending_check: ContextVar[Callable[[], None] | None] = ContextVar("mcp_acl_pending_session_check", default=None)
"""The session check an invocation must run before deciding (set by the guard, None off-session)."""


async def _send_list_changed(session: ServerSession, kind: str) -> None:
    if kind == "tools":
        await session.send_tool_list_changed()
    elif kind == "resources":
        await session.send_resource_list_changed()
    else:
        await session.send_prompt_list_changed()


class SessionGuard:
    """`ServerMiddleware` binding sessions to identities and refusing ended ones."""

    def __init__(self, edge: CallerEdge, store: SessionStore, notifier: Notifier, outboxes: Outboxes | None = None) -> None:
        self.edge = edge
        self.store = store
        self.notifier = notifier
        # None on stdio, whose one stream is always open.
        self.outboxes = outboxes
        self._touched: dict[str, datetime] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        session_id = self.edge.session_id(ctx)
        if session_id is None:
            return await call_next(ctx)
        is_request = ctx.request_id is not None
        deferred = is_request and ctx.method in INVOCATIONS
        try:
            identity = self.edge.identity(ctx)
            if not deferred:
                await anyio.to_thread.run_sync(self.check, session_id, identity)
        except Exception as exc:
            if not is_request:
                return None  # a notification on a refused session is dropped
            if isinstance(exc, CallerUnknown):
                raise MCPError(INVALID_REQUEST, NO_IDENTITY) from None
            if not isinstance(exc, SessionRefused):
                log.warning("refusing a request on session %s: %s", session_id[:12], exc.__class__.__name__)
            raise session_error(exc) from None
        if not deferred:
            self._watch(ctx, session_id, identity)
            return await call_next(ctx)
        token = pending_check.set(partial(self.check, session_id, identity))
        try:
            result = await call_next(ctx)
        finally:
            pending_check.reset(token)
        # Reached only when the invocation's own session check passed.
        self._watch(ctx, session_id, identity)
        return result

    def check(self, session_id: str, identity: Identity) -> None:
        """Record the session on first sight; raise SessionRefused if it ended or is not `identity`'s."""
        self.store.admit(session_id, identity, self.edge.transport)
        now = utcnow()
        last = self._touched.get(session_id)
        if last is None:
            self._touched[session_id] = now
        elif now - last >= TOUCH_INTERVAL:
            self.store.touch(session_id, now)
            self._touched[session_id] = now

    def _watch(self, ctx: ServerRequestContext[Any, Any], session_id: str, identity: Identity) -> None:
        # A tool call still running when its session was killed or closed
        # gets here after forget(): watching it again would keep a watcher
        # and an outbox for a dead session for the life of the process.
        if session_id in self._ended:
            return
        if not self.notifier.watching(session_id):
            notify = partial(_send_list_changed, ctx.session)
            if self.outboxes is not None:
                notify = self.outboxes.open(session_id, notify)
            self.notifier.watch(session_id, identity, notify)

    def forget(self, session_id: str) -> None:
        """Drop what is kept in memory about an ended session, for good: it is never watched again."""
        self._ended[session_id] = None
        while len(self._ended) > _ENDED_MEMORY:
            self._ended.popitem(last=False)
        self._touched.pop(session_id, None)
        self.notifier.unwatch(session_id)
        if self.outboxes is not None:
            self.outboxes.close(session_id)
