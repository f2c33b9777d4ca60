"""A graceful shutdown for `serve`: drain, then stop.

The first SIGTERM or SIGINT does not stop uvicorn. It marks the gateway as
draining: /mcp answers new requests with 503 (the listening socket stays
open, so clients are told rather than refused a connection) and /readyz
with 503, while the calls already running go on. When none is left, or
after the grace period, the sessions and listen streams are closed and
uvicorn is told to stop: it closes its connections, the app's lifespan
ends (sessions marked closed, background tasks stopped) and the process
exits 0. A second signal stops at once, as uvicorn's own handling does.
"""

from __future__ import annotations

import logging
import time
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining the gateway's calls before it stops."""

    def __init__(self, config: uvicorn.Config, app, grace: float) -> None:
        super().__init__(config)
        self.calls = app.state.gateway.calls
        self.end_streams = app.state.end_streams
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
        log.warning("shutting down: no new calls; waiting up to %.0f s for %d running", self.grace, self.calls.count)

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s: stop once the drain is over."""
        if self._deadline is not None and not self.should_exit:
            late = time.monotonic() >= self._deadline
            if self.calls.count == 0 or late:
                if late and self.calls.count:
                    log.warning("shutting down with %d call(s) still running after the grace period", self.calls.count)
                try:
                    await self.end_streams()
                except Exception as exc:
                    log.warning("could not close the open sessions: %s", exc.__class__.__name__)
                self.should_exit = True
        return await super().on_tick(counter)
