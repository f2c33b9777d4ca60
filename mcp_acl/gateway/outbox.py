"""list_changed notices for 2025-11-25 sessions, held until the session's GET stream can carry them.

On the 2025-11-25 wire a server notification travels on the session's GET
stream, and the SDK drops it when that stream is not open: between the
`initialize` answer and the client's GET, or while the client reconnects
it. A revoke committed in that window would never be heard. So each HTTP
session's notices go through an outbox:

- a notice is kept until the session's GET stream is open, then sent;
- at most one notice per kind waits (tools, resources, prompts): a second
  `tools/list_changed` says nothing the first does not, so an outbox never
  holds more than three;
- sending happens in a task of its own per session, so a session whose
  client stopped reading holds up only itself, never the notifier.

The SDK's `EventStore` does not fit: it replays only to a client that
reconnects with a `Last-Event-ID`, and the first GET of a session has none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.streamable_http import GET_STREAM_KEY

from mcp_acl.gateway.notifier import Notify
from mcp_acl.gateway.views import LIST_KINDS

log = logging.getLogger(__name__)


@dataclass
class Outbox:
    """The notices owed to one session, and whether its GET stream is open now."""

    # None until the session is watched: its GET stream can open first.
    send: Notify | None = None
    pending: set[str] = field(default_factory=set)
    stream_open: bool = False
    sending: bool = False


class Outboxes:
    """The outboxes of one process's HTTP sessions, and the task group their sending runs in."""

    def __init__(self) -> None:
        self._boxes: dict[str, Outbox] = {}
        self._tasks: TaskGroup | None = None

    def open(self, session_id: str, send: Notify) -> Notify:
        """Give `session_id` an outbox sending with `send`; return what the notifier should call instead."""
        box = self._boxes.setdefault(session_id, Outbox())
        box.send = send

        async def post(kind: str) -> None:
            box.pending.add(kind)
            self._flush(box)

        return post

    def close(self, session_id: str) -> None:
        """Forget the session's outbox (the session ended); what it held is dropped with it."""
        box = self._boxes.pop(session_id, None)
        if box is not None:
            # The notifier may still hold the session's `post` for a moment: nothing more goes out.
            box.stream_open = False
            box.pending.clear()

    def pending(self, session_id: str) -> frozenset[str]:
        """The kinds waiting for the session's stream."""
        box = self._boxes.get(session_id)
        return frozenset(box.pending) if box else frozenset()

    def stream_changed(self, session_id: str, is_open: bool) -> None:
        """The session's GET stream opened or closed (called by the transport, on the event loop)."""
        box = self._boxes.setdefault(session_id, Outbox()) if is_open else self._boxes.get(session_id)
        if box is None:
            return
        if not is_open and box.send is None:
            # Never opened, so it holds nothing. Dropping it matters when the
            # stream registered after the session ended (close() ran first):
            # nothing else would ever remove it.
            del self._boxes[session_id]
            return
        box.stream_open = is_open
        self._flush(box)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the sending tasks until cancelled (run in the serving task group)."""
        async with anyio.create_task_group() as tg:
            self._tasks = tg
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tasks = None

    def _flush(self, box: Outbox) -> None:
        if box.pending and box.stream_open and box.send is not None and not box.sending and self._tasks is not None:
            box.sending = True
            self._tasks.start_soon(self._send_pending, box)

    async def _send_pending(self, box: Outbox) -> None:
        try:
            while box.stream_open and box.pending:
                kind = next(k for k in LIST_KINDS if k in box.pending)
                box.pending.discard(kind)
                try:
                    await box.send(kind)  # type: ignore[misc]  # set: checked in _flush
                except Exception as exc:
                    # The stream broke while sending: this notice is lost with it, as any other message on it.
                    log.debug("could not send %s/list_changed: %s", kind, exc)
        finally:
            box.sending = False


class StreamTable(dict):
    """A transport's table of open response streams (the SDK's `_request_streams`), reporting its GET stream.

    The SDK registers the GET stream here the moment it can carry messages
    and removes it when it closes; nothing public tells when that happens
    (mcp 2.3). tests/gateway/test_outbox.py fails if the SDK stops using it.
    """

    def __init__(self, on_get_stream: Callable[[bool], None]) -> None:
        super().__init__()
        self._on_get_stream = on_get_stream

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if key == GET_STREAM_KEY:
            self._on_get_stream(True)

    def pop(self, key: Any, *default: Any) -> Any:
        """Remove `key` (as dict.pop), reporting the GET stream's closing."""
        value = super().pop(key, *default)
        if key == GET_STREAM_KEY:
            self._on_get_stream(False)
        return value
