"""Deciding each call under the shadow policy too, and recording where it differs.

After an admission has decided and audited a call (that decision alone is
enforced), `observe` decides it again under `policy.shadow`, the
candidate the loader compiled (store/shadow.py). When the two differ, a
row for `shadow_differences` is queued; a background task writes the
queue every `FLUSH_SECONDS`, so the call never waits for it. Nothing here
can refuse, delay or change a call: any error is logged and the
difference is lost, and a full queue drops rows (counted in `dropped`).
Without a shadow policy the admission pays one attribute check.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from sqlalchemy import Engine

from mcp_acl.audit.chain import redact_tokens
from mcp_acl.policy import Decision, Identity, decide
from mcp_acl.store.candidate import label
from mcp_acl.store.shadow import ShadowCandidate, record_differences

log = logging.getLogger(__name__)

CAPACITY = 10_000
FLUSH_SECONDS = 0.25
DRAIN_SECONDS = 10


class ShadowRecorder:
    """Decides calls under the shadow candidate and writes the differences off the call's path."""

    def __init__(self, engine: Engine, capacity: int = CAPACITY) -> None:
        self.engine = engine
        self.capacity = capacity
        # Appended from the event loop and from admission threads; deque appends are atomic.
        self._pending: deque[dict[str, Any]] = deque()
        self.dropped = 0

    def observe(
        self, shadow: ShadowCandidate, identity: Identity, session_id: str | None, action: str, target: str,
        args: dict[str, Any] | None, decision: Decision, audit_id: int | None, now: datetime,
    ) -> None:
        """Decide the call under `shadow`; queue a difference row if the answer differs. Never raises."""
        try:
            other = decide(shadow.policy, identity, target, args, now)
            if other.allowed == decision.allowed:
                return
            if len(self._pending) >= self.capacity:
                self.dropped += 1
                return
            self._pending.append({
                "shadow_id": shadow.id, "audit_id": audit_id, "at": now, "subject": identity.subject,
                "client_id": identity.client_id, "action": action, "target": redact_tokens(target),
                "decision": "allow" if decision.allowed else "deny", "grant_id": decision.grant_id,
                "reason": redact_tokens(decision.reason), "shadow_grant": redact_tokens(label(other.grant)),
                "shadow_reason": redact_tokens(other.reason),
            })
        except Exception:
            log.warning("the shadow policy could not decide %s %s; nothing recorded", action, target, exc_info=True)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write queued differences every FLUSH_SECONDS until cancelled, then what is left."""
        task_status.started()
        try:
            while True:
                await anyio.sleep(FLUSH_SECONDS)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS):
                await self.flush()

    async def flush(self) -> None:
        """Write what is queued now, in one transaction, in a worker thread."""
        batch = []
        while self._pending:
            batch.append(self._pending.popleft())
        if not batch:
            return
        try:
            await anyio.to_thread.run_sync(record_differences, self.engine, batch)
        except Exception as exc:
            log.warning("%d shadow policy difference(s) could not be recorded: %s", len(batch), exc.__class__.__name__)
