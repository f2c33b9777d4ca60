"""Auditing refused authentications without making the event loop wait on the database.

The auth middleware reports each refused token through a plain callback on
the event loop. Writing the audit row there would stall every other
request while the database is busy (SQLite waits up to 5 s for a lock), so
a flood of bad tokens could stall the server. The callback only counts the
refusal per client address (see `mcp_acl.audit.refusal_windows`: the first
is written at once, the rest as one summary row per address and window)
and queues the rows to write; a background task writes them and the
summaries of ended windows. The sign-in page reports its refused passwords
the same way from its worker thread. At shutdown every count still open is
written, so no refusal is left out of the log's counts.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from mcp_acl.addresses import source_of
from mcp_acl.audit.refusal_windows import WINDOW_SECONDS, Refusal, RefusalWindows

log = logging.getLogger(__name__)

CAPACITY = 10_000
DRAIN_SECONDS = 10
TICK_SECONDS = 1.0  # how often ended windows are looked for
BEARER = "authentications"
SIGN_IN = "sign-ins"


class RefusalLog:
    """Counts refused authentications per source and writes their `authentication` audit rows."""

    def __init__(
        self, audit, capacity: int = CAPACITY, *, window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audit = audit
        self.capacity = capacity
        self.windows = RefusalWindows(seconds=window_seconds)
        self.clock = clock
        self._queue: MemoryObjectSendStream[Refusal] | None = None

    def on_refused(self, reason: str, info: dict[str, Any] | None = None) -> None:
        """The hook for `protect(..., on_refused=...)`: count, and queue what to write (never blocks)."""
        info = info or {}
        # iss/sub/client_id are what the refused token claims, unverified.
        refusal = Refusal(reason, info.get("iss"), info.get("sub"), info.get("client_id"))
        address = info.get("remote_addr")
        channel = BEARER
        if info.get("signed"):
            # A token the issuer signed (expired, revoked scope…): a real
            # identity, counted on its own so a flood of forged tokens from
            # the same address cannot fold it into theirs. Forgers cannot
            # make new ones, so these stay few.
            channel = f"{BEARER} of {info.get('sub') or info.get('client_id') or 'no one'}"
        for row in self.windows.note(channel, address, refusal, self.clock()):
            self._submit(channel, address, row)

    def sign_in_refused(
        self, address: str | None, reason: str, subject: str | None = None, client_id: str | None = None,
        *, at_once: bool = False,
    ) -> None:
        """Count a refused sign-in and write what is due (call from a worker thread: it may block).

        `at_once`: written now, never folded into a count (the right password
        of a disabled account: someone holds it, and the log must say who).
        """
        refusal = Refusal(reason, None, subject, client_id)
        if at_once:
            self._write(Refusal(f"{reason} (from {source_of(address)})", None, subject, client_id))
            return
        for row in self.windows.note(SIGN_IN, address, refusal, self.clock()):
            self._write(row)

    def _submit(self, channel: str, address: str | None, row: Refusal) -> None:
        if self._queue is None:
            self._write(row)  # not serving yet (no event loop work to stall)
            return
        try:
            self._queue.send_nowait(row)
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            # Counted back into its source's window: a later summary row carries it.
            self.windows.carry(channel, address, row, self.clock())

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write queued rows and the summaries of ended windows until cancelled, then the rest."""
        send, receive = anyio.create_memory_object_stream[Refusal](self.capacity)
        # Rows taken from the queue or from ended windows, not yet written:
        # a cancellation between two writes must not drop the rest.
        pending: deque[Refusal] = deque()
        with send, receive:
            self._queue = send
            task_status.started()
            try:
                while True:
                    with anyio.move_on_after(TICK_SECONDS):
                        pending.append(await receive.receive())
                    pending.extend(self.windows.due(self.clock()))
                    while pending:
                        await anyio.to_thread.run_sync(self._write, pending[0])
                        pending.popleft()
            finally:
                self._queue = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS):
                    while pending:
                        await anyio.to_thread.run_sync(self._write, pending.popleft())
                    while True:
                        try:
                            row = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        await anyio.to_thread.run_sync(self._write, row)
                    for row in self.windows.flush(self.clock()):
                        await anyio.to_thread.run_sync(self._write, row)

    def _write(self, row: Refusal) -> None:
        try:
            self.audit.record_authentication(**row.row())
        except Exception as exc:
            # The request was refused either way; say that its row is missing.
            log.warning("%d refused authentication(s) could not be audited: %s", row.count, exc.__class__.__name__)
