"""Recording outcomes after the answer has gone out, in order, off the request's path.

The decision row is committed before a tool runs (that is what makes a
call auditable); the outcome row only says how it ended, so the caller
need not wait for it. A background task collects queued outcomes for up to
`BATCH_SECONDS` and appends them in one transaction: one audit write per
batch instead of one per call, which keeps the outcome rows from competing
with the next call's decision. When the queue is full or the task is not
running, an outcome is written at once instead; on shutdown the queue is
drained. A crash loses at most the last batch's outcome rows, never a
decision row. While the database cannot be reached (a restart, a
fail-over), the batch is kept and tried again until it is written, so an
outage on the database's side loses no outcome either.
"""

from __future__ import annotations

import logging

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

log = logging.getLogger(__name__)

CAPACITY = 10_000
DRAIN_SECONDS = 10
BATCH_SECONDS = 0.05
MAX_BATCH = 500
# Waits between tries of a batch while the database is unreachable.
RETRY_SECONDS = (0.2, 0.5, 1, 2, 5)

_Item = tuple[int, str, "str | None"]


class OutcomeWriter:
    """A queue of (decision row id, outcome, session) written by one background task."""

    def __init__(self, audit, capacity: int = CAPACITY) -> None:
        self.audit = audit
        self.capacity = capacity
        self._queue: MemoryObjectSendStream[_Item] | None = None

    async def record(self, decision_id: int, outcome: str, session_id: str | None) -> None:
        """Queue one outcome (or write it now when no writer runs or the queue is full)."""
        if self._queue is not None:
            try:
                self._queue.send_nowait((decision_id, outcome, session_id))
                return
            except (anyio.WouldBlock, anyio.ClosedResourceError):
                pass
        await self._write([(decision_id, outcome, session_id)])

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write queued outcomes in batches until cancelled, then drain what is left."""
        send, receive = anyio.create_memory_object_stream[_Item](self.capacity)
        with send, receive:
            self._queue = send
            task_status.started()
            batch: list[_Item] = []
            try:
                while True:
                    batch.append(await receive.receive())
                    with anyio.move_on_after(BATCH_SECONDS):
                        while len(batch) < MAX_BATCH:
                            batch.append(await receive.receive())
                    await self._write_when_reachable(batch)
                    # Cleared only once written: a shutdown meanwhile drains it below.
                    batch = []
            finally:
                self._queue = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS):
                    while True:
                        try:
                            batch.append(receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    await self._write(batch)

    async def _write_when_reachable(self, batch: list[_Item]) -> None:
        failures = 0
        while True:
            try:
                await anyio.to_thread.run_sync(self.audit.record_outcomes, batch)
                return
            except Exception as exc:
                if not _unreachable(exc):
                    break
                log.warning("the database is unreachable; %d outcome rows wait (%s)", len(batch), exc.__class__.__name__)
            await anyio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1
        await self._write(batch)

    async def _write(self, batch: list[_Item]) -> None:
        if not batch:
            return
        try:
            await anyio.to_thread.run_sync(self.audit.record_outcomes, batch)
            return
        except Exception as exc:
            if len(batch) == 1:
                # The effect has happened and its decision row says it was allowed.
                log.warning("the outcome of audit row %s could not be recorded (%s)", batch[0][0], exc)
                return
        for item in batch:  # one bad row must not cost the others theirs
            await self._write([item])


def _unreachable(exc: BaseException) -> bool:
    """True when `exc` comes from the database connection (DBAPI OperationalError/InterfaceError), not from a row."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if type(seen).__name__ in ("OperationalError", "InterfaceError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
