"""The calls running in this process: counted for a graceful shutdown, timed for the metrics.

Every tools/call, resources/read and prompts/get passes through
`CallLedger.running()`. Shutting down (`serve`, on SIGTERM or SIGINT) first
sets `draining`: the HTTP edge then refuses new requests with 503 and
/readyz says so, while the calls already counted here run to their end.
The metrics sink, when `serve --metrics` set one, hears each call's
duration; without one, a call costs two integer updates.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_acl.observe.metrics import Metrics

# Caller-supplied names outside the catalogue share one label value, so a
# caller cannot grow the metrics' label sets with made-up names.
OTHER = "(unknown)"


class CallLedger:
    """How many calls are running, and whether new ones are still taken."""

    def __init__(self) -> None:
        self.count = 0
        # POST requests to /mcp being answered (drain.py): a call's answer is
        # written after its handler returns, so the drain waits for these too.
        self.requests = 0
        self.draining = False
        self.metrics: Metrics | None = None

    def idle(self) -> bool:
        """True when no call runs and no answer is being written."""
        return self.count == 0 and self.requests == 0

    def running(self, action: str, label: str) -> _Running:
        """A context manager around one call; `label` is a catalogue name or OTHER."""
        return _Running(self, action, label)


class _Running:
    __slots__ = ("ledger", "action", "label", "started", "error")

    def __init__(self, ledger: CallLedger, action: str, label: str) -> None:
        self.ledger = ledger
        self.action = action
        self.label = label
        self.error = False
        self.started = 0.0

    def failed(self) -> None:
        """The call ended in an error the caller sees (a refusal included)."""
        self.error = True

    def __enter__(self) -> _Running:
        self.ledger.count += 1
        if self.ledger.metrics is not None:
            self.started = time.perf_counter()
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        self.ledger.count -= 1
        metrics = self.ledger.metrics
        if metrics is not None and self.started:
            outcome = "error" if (self.error or kind is not None) else "ok"
            metrics.called(self.action, self.label, outcome, time.perf_counter() - self.started)
