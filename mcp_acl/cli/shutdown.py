"""A graceful shutdown for `serve`: drain, then stop.

The first SIGTERM or SIGINT does not stop uvicorn. It marks the gateway as
draining: /mcp answers new requests with 503 (the listening socket stays
open, so clients are told rather than refused a connection) and /readyz
with 503, while the calls already running go on. When none is left, or
after the grace period, the sessions and listen streams are closed and
uvicorn is told to stop: it closes its connections, the app's lifespan
ends (sessions marked closed, background tasks stopped) and the process
exits 0. A second signal stops at once, as uvicorn's own handling does.
A plain tool handler still running after the grace period cannot be
interrupted (it is a thread): the process then exits 0 without it a few
seconds later, as an orchestrator's kill would end it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)

# After the grace period, how long the rest of the shutdown may wait for a
# tool handler that will not return (a plain handler's thread cannot be
# interrupted, and the app's shutdown waits for it) before the process exits anyway.
STUCK_SECONDS = 5


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining the gateway's calls before it stops."""

    def __init__(self, config: uvicorn.Config, app, grace: float) -> None:
        super().__init__(config)
        self.calls = app.state.gateway.calls
        self.end_listen_streams = app.state.end_listen_streams
        self.end_sessions = app.state.end_sessions
        self.grace = grace
        self._deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: start draining; a second one: uvicorn's own exit (at once)."""
        if self._deadline is not None:
            super().handle_exit(sig, frame)
            return
        # Not recorded as uvicorn would record it: uvicorn re-raises recorded
        # signals after stopping, and a drained server exits 0, not by SIGTERM.
        self.calls.draining = True
        self._deadline = time.monotonic() + self.grace
        self._listening_ended = False
        log.warning("shutting down: no new calls; waiting up to %g s for %d running", self.grace, self.calls.count)

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s: stop once the drain is over."""
        if self._deadline is not None and not self.should_exit:
            if not self._listening_ended:
                # Listen streams are requests that never finish by themselves: end them first.
                self._listening_ended = True
                self.end_listen_streams()
            late = time.monotonic() >= self._deadline
            if self.calls.idle() or late:
                if late and self.calls.count:
                    log.warning("shutting down with %d call(s) still running after the grace period", self.calls.count)
                    _exit_later(self.config.timeout_graceful_shutdown + STUCK_SECONDS)
                try:
                    await self.end_sessions()
                except Exception as exc:
                    log.warning("could not close the open sessions: %s", exc.__class__.__name__)
                self.should_exit = True
        return await super().on_tick(counter)


def _exit_later(seconds: float) -> None:
    def leave() -> None:
        log.warning("a tool call is still running %g s after shutting down began; exiting without it", seconds)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()
