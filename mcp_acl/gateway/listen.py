"""2026-07-28 `subscriptions/listen` streams that only hear about their own caller's lists.

The SDK's `ListenHandler` serves the stream (ack, subscription id stamping,
filtering by what the client asked for) and calls `bus.subscribe(listener)`
from inside the listen request, where the caller's verified token is in
context. This bus turns each subscription into a `Notifier` watcher for
that identity, so a policy change reaches exactly the streams whose
visible tools, resources or prompts it changed. `publish` (a broadcast to
every stream) is never used by the gateway.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)

from mcp_acl.gateway.edge import CallerEdge
from mcp_acl.gateway.notifier import Notifier

log = logging.getLogger(__name__)

_EVENTS: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "resources": ResourcesListChanged(),
    "prompts": PromptsListChanged(),
}


class IdentityBus:
    """A `SubscriptionBus` whose subscribers are watched per identity by the notifier."""

    def __init__(self, edge: CallerEdge, notifier: Notifier) -> None:
        self.edge = edge
        self.notifier = notifier
        self._ids = itertools.count(1)
        self._listeners: dict[str, Callable[[ServerEvent], None]] = {}

    async def publish(self, event: ServerEvent) -> None:
        """Deliver `event` to every stream (kept for the protocol; the notifier targets streams itself)."""
        for listener in list(self._listeners.values()):
            listener(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register one listen stream for the identity of the request that opened it."""
        # Raises CallerUnknown without a verified caller: the listen request fails, nothing is registered.
        identity = self.edge.identity()
        key = f"listen-{next(self._ids)}"

        async def notify(kind: str) -> None:
            listener(_EVENTS[kind])

        self._listeners[key] = listener
        self.notifier.watch(key, identity, notify)

        def unsubscribe() -> None:
            self._listeners.pop(key, None)
            self.notifier.unwatch(key)

        return unsubscribe
