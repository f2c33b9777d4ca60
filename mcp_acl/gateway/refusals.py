"""Auditing refused authentications without making the event loop wait on the database.

The auth middleware reports each refused token through a plain callback on
the event loop. Writing the audit row there would stall every other
request while the database is busy (SQLite waits up to 5 s for a lock), so
a flood of bad tokens could stall the server. The callback only queues the
row; a background task writes it. The request is refused either way; if
the queue is ever full, the rows that do not fit are counted in the log.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

log = logging.getLogger(__name__)

CAPACITY = 10_000
DRAIN_SECONDS = 10


class RefusalLog:
    """Queues `authentication` audit rows from the auth middleware's `on_refused` hook."""

    def __init__(self, audit, capacity: int = CAPACITY) -> None:
        self.audit = audit
        self.capacity = capacity
        self._queue: MemoryObjectSendStream[dict[str, Any]] | None = None

    def on_refused(self, reason: str, info: dict[str, Any] | None = None) -> None:
        """The hook for `protect(..., on_refused=...)`: queue one row (never blocks)."""
        info = info or {}
        # iss/sub/client_id are what the refused token claims, unverified.
        row = {"reason": reason, "issuer": info.get("iss"), "subject": info.get("sub"), "client_id": info.get("client_id")}
        if self._queue is None:
            self._write(row)  # not serving yet (no event loop work to stall)
            return
        try:
            self._queue.send_nowait(row)
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            log.warning("a refused authentication was not audited: the audit queue is full")

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write queued rows until cancelled, then drain what is left."""
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](self.capacity)
        with send, receive:
            self._queue = send
            task_status.started()
            try:
                while True:
                    await anyio.to_thread.run_sync(self._write, await receive.receive())
            finally:
                self._queue = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS):
                    while True:
                        try:
                            row = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        await anyio.to_thread.run_sync(self._write, row)

    def _write(self, row: dict[str, Any]) -> None:
        try:
            self.audit.record_authentication(**row)
        except Exception as exc:
            # The request was refused either way; say that its row is missing.
            log.warning("a refused authentication could not be audited: %s", exc.__class__.__name__)
