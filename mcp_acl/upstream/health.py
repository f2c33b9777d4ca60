"""What a serving gateway reports of its upstreams' health: written only when it changed, never on the call path."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

import anyio.to_thread
from sqlalchemy import Engine

from mcp_acl.store.admin import utcnow
from mcp_acl.store.upstream_status import UpstreamStatus, mark_stopped, report_status
from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.credentials import MissingCredential, resolve

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
# Whitespace-separated parts of a credential this long are scrubbed one by one too
# (an error may quote a header value cut, escaped or split across lines).
_SCRUBBED_PART = 6


def redact(text: str, up: Upstream) -> str:
    """`text` with every credential value of `up` (its headers' and env's references, resolved now) blanked out."""
    for reference in (*up.headers.values(), *up.env.values()):
        try:
            value = resolve(reference)
        except MissingCredential:
            continue
        forms = {value, repr(value)[1:-1], repr(value.encode("utf-8", "replace"))[2:-1]}
        forms.update(part for part in value.split() if len(part) >= _SCRUBBED_PART)
        for form in sorted((f for f in forms if f), key=len, reverse=True):
            text = text.replace(form, REDACTED)
    return text


class HealthReports:
    """One gateway's view of each upstream, written to the store when it changes."""

    def __init__(self, engine: Engine | None) -> None:
        self.engine = engine
        self.reporter = f"{socket.gethostname()}:{os.getpid()}"
        # Off for commands that connect only to show the catalogue: they are not a serving gateway.
        self.enabled = engine is not None
        self._counts: dict[str, tuple[int, int]] = {}
        self._seen_at: dict[str, datetime] = {}
        self._sent: dict[str, tuple] = {}

    def tools_read(self, name: str, listed: int, withheld: int) -> None:
        """The gateway read `name`'s tools just now: `listed` are served, `withheld` wait for approval."""
        self._counts[name] = (listed, withheld)
        self._seen_at[name] = utcnow()

    def forget(self, name: str) -> None:
        """`name` left this gateway (removed): nothing more is reported for it."""
        for kept in (self._counts, self._seen_at, self._sent):
            kept.pop(name, None)

    def _now(self, conn: UpstreamConnection, left_out: bool) -> UpstreamStatus | None:
        name = conn.upstream.name
        if left_out:
            return UpstreamStatus("down", last_error=f"left out: a tool module already serves {name}.*")
        if not conn.settled.is_set():
            return None  # the first attempt is still under way
        listed, withheld = self._counts.get(name, (None, None))
        if conn.client is not None:
            return UpstreamStatus("connected", listed, withheld, None, self._seen_at.get(name))
        return UpstreamStatus("down", listed, withheld, conn.last_error, self._seen_at.get(name))

    async def report(self, connections: Mapping[str, UpstreamConnection], left_out: set[str]) -> None:
        """Write each upstream whose state, counts, error or last read changed since the last report."""
        if not self.enabled:
            return
        for name, conn in list(connections.items()):
            status = self._now(conn, name in left_out)
            if status is None or self._sent.get(name) == status:
                continue
            # Scrubbed when written: an error text may quote what a credential resolved to.
            error = redact(status.last_error, conn.upstream) if status.last_error else None
            written = replace(status, last_error=error, reported_by=self.reporter, reported_at=utcnow())
            try:
                await anyio.to_thread.run_sync(report_status, self.engine, name, written)
            except Exception as exc:
                log.warning("upstream %s: cannot record its health: %s", name, exc.__class__.__name__)
                continue
            self._sent[name] = status

    async def stopped(self) -> None:
        """The gateway stops: its reports say so (shielded, as this runs while being cancelled)."""
        if not (self.enabled and self._sent):
            return
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(mark_stopped, self.engine, self.reporter)
            except Exception as exc:
                log.warning("upstreams: cannot record that this gateway stopped: %s", exc.__class__.__name__)
