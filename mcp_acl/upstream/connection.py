"""One upstream's pooled MCP client session, kept open by a supervising task.

The SDK's client runs task groups that must be entered and left in one
task, so each upstream gets a task that opens the session, waits until a
call finds it broken, closes it and opens it again with back-off. Calls
from any request task share the open session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TextIO

import anyio

from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.changes import change_listener, listening
from mcp_acl.upstream.credentials import resolve_all

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 30.0


class UpstreamConnection:
    """The session to one upstream: `client` while open, else None and `last_error` says why."""

    def __init__(self, upstream: Upstream, *, log_failures: bool = True, auth=None) -> None:
        from mcp_acl.upstream.exchange import CallerSessions
        from mcp_acl.upstream.oauth import bearer_for

        self.upstream = upstream
        # OAuth bearer tokens towards the upstream (None: its static headers only); kept across reconnects.
        self.auth = auth if auth is not None else bearer_for(upstream)
        # Token exchange: calls go over per-caller sessions (the pool runs them); this one lists the tools.
        exchange = upstream.oauth is not None and upstream.oauth.token_exchange and auth is None
        self.callers = CallerSessions(upstream) if exchange else None
        # A one-off command says why in its own error line instead.
        self.log_failures = log_failures
        self.client = None
        self.last_error: str | None = "not connected yet"
        self._broken = anyio.Event()
        # Set once the first attempt to open has ended, open or not.
        self.settled = anyio.Event()
        # Called when the session opens again after that (a reconnect): its tools may have changed.
        self.on_reopen: Callable[[], None] | None = None
        # Where a command's stderr goes: None is the gateway's own; a one-off command keeps it to quote.
        self.errlog: TextIO | None = None
        # Called when the open session says its tools, resources or prompts changed (list_changed).
        self.on_list_changed: Callable[[], None] | None = None

    def broken(self) -> None:
        """Told by a call that the session failed: the supervisor closes it and opens a new one."""
        self._broken.set()

    async def _open(self, stack: AsyncExitStack):
        from mcp import Client

        up = self.upstream
        if up.transport == "http":
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            if self.auth is not None:
                await self.auth.ready()  # no token, no connection: the reason becomes last_error
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=resolve_all(up.headers), auth=self.auth, timeout=httpx2.Timeout(up.timeout_seconds, read=None)
                )
            )
            server = streamable_http_client(up.url, http_client=http)
        elif up.transport == "sse":
            from mcp.client.sse import sse_client

            # No read timeout on the event stream: an idle upstream is not a broken one.
            if self.auth is not None:
                await self.auth.ready()
            server = sse_client(
                up.url, headers=resolve_all(up.headers), auth=self.auth, timeout=up.timeout_seconds, sse_read_timeout=None,
            )
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            server = StdioServerParameters(command=up.command, args=list(up.args), env=resolve_all(up.env) or None)
            if self.errlog is not None:
                server = stdio_client(server, errlog=self.errlog)
        # No response cache: every listing and call goes to the upstream. The read
        # timeout bounds the handshake too (a cancel scope around entering the
        # client cannot be used: the client's task groups outlive it).
        heard = change_listener(up.name, self._list_changed)
        client = await stack.enter_async_context(
            Client(server, cache=None, read_timeout_seconds=up.timeout_seconds, message_handler=heard)
        )
        await stack.enter_async_context(listening(client, up.name, self._list_changed, self.broken))
        return client

    def _list_changed(self) -> None:
        if self.on_list_changed is not None:
            self.on_list_changed()

    async def supervise(self) -> None:
        """Keep the session open until cancelled; `settled` is set after the first attempt, open or not."""
        delay = FIRST_RETRY_SECONDS
        while True:
            self._broken = anyio.Event()
            try:
                async with AsyncExitStack() as stack:
                    client = await self._open(stack)
                    self.client, self.last_error, delay = client, None, FIRST_RETRY_SECONDS
                    if self.settled.is_set() and self.on_reopen is not None:
                        self.on_reopen()
                    self.settled.set()
                    await self._broken.wait()
                    # No new call may pick up the session while it closes.
                    self.client, self.last_error = None, "the connection failed"
            except Exception as exc:
                self.last_error = _why(exc)
                if self.log_failures:
                    log.warning("upstream %s: cannot connect: %s", self.upstream.name, self.last_error)
            finally:
                self.client = None
            self.settled.set()
            await anyio.sleep(delay)
            delay = min(delay * 2, LONGEST_RETRY_SECONDS)


def _why(exc: BaseException) -> str:
    # The SDK raises exception groups from its task groups; name the first real cause.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
