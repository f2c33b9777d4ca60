"""Streamable HTTP sessions: knowing when one ends, and ending one that was killed.

The SDK's session manager owns the sessions; this subclass hooks the single
place where a session is discarded (client DELETE, idle timeout, crash) so
its row is marked closed, and lets the gateway end a session an admin
killed, possibly from another process. It also reports when a session's
GET stream opens or closes, so list_changed notices wait for it (outbox.py).
`_discard_session`, `_admit_session`, `_server_instances` and the
transport's `_request_streams` are the SDK's private names (mcp 2.3); the
tests in tests/gateway/test_transport.py and test_outbox.py fail if they change.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcp_acl.gateway.outbox import StreamTable
from mcp_acl.gateway.sessions import KILLED, KILLED_MESSAGE, SessionStore

log = logging.getLogger(__name__)

REAP_INTERVAL = 0.5
_KILLED_MEMORY = 10_000


class GatewaySessionManager(StreamableHTTPSessionManager):
    """The SDK's stateful session manager, reporting ended sessions and ending killed ones."""

    def __init__(
        self, app: Any, *, on_ended: Callable[[str], Awaitable[None]],
        on_get_stream: Callable[[str, bool], None] = lambda session_id, is_open: None, **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._on_ended = on_ended
        self._on_get_stream = on_get_stream
        # Sessions ended here because they were killed, so their next request
        # is told why instead of a bare "Session not found".
        self._killed: OrderedDict[str, None] = OrderedDict()

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        """The SDK's new session transport, whose GET stream opening and closing is reported to `on_get_stream`."""
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            transport._request_streams = StreamTable(partial(self._on_get_stream, transport.mcp_session_id))
        return transport

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        was_open = session_id in self._server_instances
        await super()._discard_session(session_id, transport)
        if was_open:
            with anyio.CancelScope(shield=True):
                try:
                    await self._on_ended(session_id)
                except Exception as exc:
                    log.warning("could not record the end of session %s: %s", session_id[:12], exc)

    async def close_all(self) -> int:
        """End every session open here (a graceful shutdown): rows marked closed, GET streams ended."""
        ended = 0
        for session_id, transport in list(self._server_instances.items()):
            await self._discard_session(session_id, transport)
            ended += 1
        return ended

    def session_ids(self) -> list[str]:
        """The sessions open in this process."""
        return list(self._server_instances)

    async def kill(self, session_id: str) -> bool:
        """End a session here (its GET stream closes); False if it is not open in this process."""
        transport = self._server_instances.get(session_id)
        self._killed[session_id] = None
        while len(self._killed) > _KILLED_MEMORY:
            self._killed.popitem(last=False)
        if transport is None:
            return False
        await self._discard_session(session_id, transport)
        return True

    def was_killed(self, session_id: str) -> bool:
        """True for a session this process ended because it was killed."""
        return session_id in self._killed


class McpEndpoint:
    """The ASGI app at /mcp: a killed session's requests get a clear 404, the rest go to the SDK."""

    def __init__(self, manager: GatewaySessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = _header(scope, b"mcp-session-id")
        if session_id is not None and self.manager.was_killed(session_id):
            body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=KILLED_MESSAGE))
            response = Response(body.model_dump_json(by_alias=True), status_code=404, media_type="application/json")
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class KilledReaper:
    """Ends the sessions open here that were killed from any process.

    Looks when woken (a commit was heard: `sessions kill` sends the same
    PostgreSQL NOTIFY as a policy change) and every `interval` in any case,
    so a lost notification costs at most `interval`.
    """

    def __init__(self, manager: GatewaySessionManager, store: SessionStore, interval: float = REAP_INTERVAL) -> None:
        self.manager = manager
        self.store = store
        self.interval = interval
        self._woken: anyio.Event | None = None

    def wake(self) -> None:
        """Look now rather than at the next interval (called on the event loop)."""
        if self._woken is not None:
            self._woken.set()

    async def run(self) -> None:
        """Reap until cancelled."""
        while True:
            self._woken = woken = anyio.Event()
            with anyio.move_on_after(self.interval):
                await woken.wait()
            await self.reap()

    async def reap(self) -> None:
        """End the sessions open here whose rows say they were killed."""
        ids = self.manager.session_ids()
        if not ids:
            return
        try:
            ended = await anyio.to_thread.run_sync(self.store.ended_among, ids)
        except Exception as exc:
            log.warning("could not check for killed sessions: %s", exc.__class__.__name__)
            return
        for session_id, reason in ended.items():
            if reason == KILLED:
                await self.manager.kill(session_id)
