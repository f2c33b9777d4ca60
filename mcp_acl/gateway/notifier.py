"""Continuous evaluation for listings: tell live sessions when what they may see changed.

A background task looks at the policy revision (one small query) as soon
as `wake()` says some process committed to the database (store/commits.py:
a LISTEN on PostgreSQL, a watch on SQLite's files), and in any case about
four times a second. When it moved, or when a grant of a watched identity
expired, each watcher's listing is rebuilt and compared with the one it
was last shown; only watchers whose tools, resources or prompts changed
are notified, and only for the lists that changed.

Watchers are 2025-11-25 sessions (notified on their GET stream) and
2026-07-28 `subscriptions/listen` streams (see listen.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

from mcp_acl.gateway.invocation import PolicySource, utcnow
from mcp_acl.gateway.views import LIST_KINDS, CatalogueViews, Listing
from mcp_acl.policy import CompiledPolicy, Identity

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25

Notify = Callable[[str], Awaitable[None]]
"""Sends the list_changed notification for one kind: "tools", "resources" or "prompts"."""


@dataclass
class Watcher:
    """One live session or listen stream, and the listing it was last shown."""

    key: str
    identity: Identity
    notify: Notify
    seen: dict[str, tuple] = field(default_factory=dict)
    stale_after: datetime | None = None
    # The policy current when watching began: the first poll takes its
    # listing as what was shown, so a change in between is not missed.
    baseline: CompiledPolicy | None = None

    def remember(self, listing: Listing) -> list[str]:
        """Take `listing` as shown; return the kinds that differ from before."""
        changed = []
        for kind in LIST_KINDS:
            fp = listing.fingerprint(kind)
            if kind in self.seen and self.seen[kind] != fp:
                changed.append(kind)
            self.seen[kind] = fp
        self.stale_after = listing.stale_after
        return changed


class Notifier:
    """Holds the watchers and the policy they were last evaluated against."""

    def __init__(
        self, policies: PolicySource, views: CatalogueViews,
        clock: Callable[[], datetime] = utcnow, interval: float = POLL_INTERVAL,
    ) -> None:
        self.policies = policies
        self.views = views
        self.clock = clock
        self.interval = interval
        self.policy: CompiledPolicy | None = None
        self._watchers: dict[str, Watcher] = {}
        self._woken: anyio.Event | None = None  # made in run(), on the event loop
        self._catalogue_moved = False
        # When the first wake since the last check came (perf_counter), and who hears how long the notices took.
        self._woken_at: float | None = None
        self.on_notified: Callable[[float], None] | None = None

    def watch(self, key: str, identity: Identity, notify: Notify) -> None:
        """Start watching on behalf of `identity` (no I/O, no filtering here: the next poll does it)."""
        if key not in self._watchers:
            self._watchers[key] = Watcher(key, identity, notify, baseline=self.policy)

    def unwatch(self, key: str) -> None:
        """Stop watching (the session ended or the stream closed)."""
        self._watchers.pop(key, None)

    def watching(self, key: str) -> bool:
        """True while `key` is watched."""
        return key in self._watchers

    async def check(self) -> None:
        """One poll: re-evaluate watchers if the revision moved or one of their listings went stale."""
        woken_at, self._woken_at = self._woken_at, None
        changes = await anyio.to_thread.run_sync(self._changes, list(self._watchers.values()))
        for watcher, kinds in changes:
            for kind in kinds:
                try:
                    await watcher.notify(kind)
                except Exception as exc:
                    # A broken stream must not stop the others from being told.
                    log.debug("could not notify %s of %s/list_changed: %s", watcher.key, kind, exc)
        if changes and self.on_notified is not None:
            if woken_at is None:
                # Begun by the poll, this check read a change that committed while it ran: its
                # wake came after the check began, so time from that wake and let the next
                # check (which finds nothing new) not time it again.
                woken_at, self._woken_at = self._woken_at, None
            if woken_at is not None:
                self.on_notified(time.perf_counter() - woken_at)

    def _changes(self, watchers: list[Watcher]) -> list[tuple[Watcher, list[str]]]:
        # In a worker thread: a new revision can mean filtering the catalogue
        # for every watched identity, which must not stall the event loop.
        policy = self.policies.current()
        now = self.clock()
        catalogue_moved, self._catalogue_moved = self._catalogue_moved, False
        moved = catalogue_moved or self.policy is None or policy.revision != self.policy.revision
        self.policy = policy
        changes = []
        for watcher in watchers:
            if not watcher.seen:
                base, watcher.baseline = watcher.baseline or policy, None
                view = self.views.listing if base is policy else self.views.build
                watcher.remember(view(base, watcher.identity, now))
            stale = watcher.stale_after is not None and now >= watcher.stale_after
            if moved or stale or not watcher.seen:
                kinds = watcher.remember(self.views.listing(policy, watcher.identity, now))
                if kinds:
                    changes.append((watcher, kinds))
        return changes

    def catalogue_changed(self) -> None:
        """The catalogue changed at the same revision (an upstream was re-read): re-evaluate every watcher now."""
        self._catalogue_moved = True
        self.wake()

    def wake(self) -> None:
        """Look again now rather than at the next poll (called on the event loop when something committed)."""
        if self._woken is not None:
            if self._woken_at is None:
                self._woken_at = time.perf_counter()
            self._woken.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Check when woken, or every `interval` at the latest, until cancelled; a failed check is logged."""
        self._woken = woken = anyio.Event()
        await self._check_logged()
        task_status.started()
        while True:
            with anyio.move_on_after(self.interval):
                await woken.wait()
            # Wakes that arrive during the check set the new event: one more check, not one per wake.
            self._woken = woken = anyio.Event()
            await self._check_logged()

    async def _check_logged(self) -> None:
        try:
            await self.check()
        except Exception as exc:
            log.warning("policy watch failed: %s: %s", exc.__class__.__name__, exc)
