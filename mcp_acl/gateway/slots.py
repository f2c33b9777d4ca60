"""Tool slots: the worker threads that plain tool handlers run in, kept apart.

Plain (not `async`) tool handlers and resource readers do file and SQL I/O,
so they run in worker threads. They get their own limiter of
`MCP_ACL_TOOL_THREADS` slots (default 20) instead of anyio's default thread
limiter (40 threads), which admissions, listings, session and audit writes
use. Handlers that hang (a stuck query, a network call with no timeout) can
then take every tool slot but never delay a decision, an audit row or
tools/list for anyone.

When every slot is taken, a call waits up to `MCP_ACL_TOOL_WAIT` seconds
(default 30) for one, then is refused with ToolsBusy. It was already
decided and audited; its outcome is recorded as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from mcp_acl.gateway.specs import ToolError

DEFAULT_SLOTS = 20
DEFAULT_WAIT_SECONDS = 30.0


class ToolsBusy(ToolError):
    """Every tool slot stayed taken for the whole wait; the caller may try again."""


class ToolSlots:
    """At most `size` plain handlers at once, in threads the rest of the gateway never waits for."""

    def __init__(self, size: int = DEFAULT_SLOTS, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"the number of tool slots must be a whole number from 1 up, not {size!r}")
        if not wait_seconds >= 0:
            raise ValueError(f"the wait for a tool slot must be 0 seconds or more, not {wait_seconds!r}")
        self.size = size
        self.wait_seconds = wait_seconds
        # The gate can be waited for with a deadline; the limiter only keeps
        # these threads off anyio's default limiter (the gate already
        # bounds them, so it never makes anyone wait).
        self._gate = anyio.Semaphore(size)
        self._threads = anyio.CapacityLimiter(size)

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func(*args)` in a worker thread once a slot is free; ToolsBusy when none frees up in time."""
        await self._take()
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._threads)
        finally:
            self._gate.release()

    async def _take(self) -> None:
        try:
            self._gate.acquire_nowait()
            return
        except anyio.WouldBlock:
            pass
        # Not reached when a slot is free, so a wait of 0 refuses only when all are taken.
        with anyio.move_on_after(self.wait_seconds):
            await self._gate.acquire()
            return
        raise ToolsBusy(f"Busy: all {self.size} tool slots are in use by other calls; try again in a moment.")
