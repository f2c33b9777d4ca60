"""Hearing an upstream say its lists changed (notifications/{tools,resources,prompts}/list_changed).

On the 2025-11-25 handshake a server sends them on its own; on 2026-07-28 a
client must hold a `subscriptions/listen` stream open to get them. Either
way the SDK's session hands each notification to the client's message
handler, so that handler is the one place the pool is told to re-read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger(__name__)

# Pause before listening again after the server closed a stream.
RELISTEN_SECONDS = 1.0

LIST_CHANGED = (types.ToolListChangedNotification, types.ResourceListChangedNotification, types.PromptListChangedNotification)


def change_listener(name: str, changed: Callable[[], None]):
    """A client message handler that calls `changed` when the upstream says one of its lists changed."""

    async def heard(message) -> None:
        # Anything else (progress goes to each call's own callback; transport errors reach the calls) is not ours.
        if isinstance(message, LIST_CHANGED):
            log.info("upstream %s: %s", name, message.method)
            changed()

    return heard


@asynccontextmanager
async def listening(client, name: str, changed: Callable[[], None], lost: Callable[[], None]) -> AsyncIterator[None]:
    """On a 2026-07-28 connection to a server that offers list changes, keep a `subscriptions/listen` stream open.

    Its events reach the message handler (see change_listener). The first
    stream is acknowledged before this is entered, so no change after the
    connection opened goes unheard. A stream the server closes is opened
    again (and the lists re-read: a change in between was missed); one that
    breaks calls `lost`, and the connection is reopened.
    """
    caps = client.server_capabilities
    wanted = {
        "tools_list_changed": bool(caps.tools and caps.tools.list_changed),
        "resources_list_changed": bool(caps.resources and caps.resources.list_changed),
        "prompts_list_changed": bool(caps.prompts and caps.prompts.list_changed),
    }
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not any(wanted.values()):
        yield
        return
    async with anyio.create_task_group() as tg:
        await tg.start(_listen, client, wanted, name, changed, lost)
        yield
        tg.cancel_scope.cancel()


async def _listen(
    client, wanted: dict[str, bool], name: str, changed: Callable[[], None], lost: Callable[[], None],
    *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    first = True
    while True:
        try:
            async with client.listen(**wanted) as sub:
                if first:
                    first = False
                    task_status.started()
                else:
                    changed()
                async for _ in sub:
                    pass  # each event was handed to the message handler already
        except Exception as exc:
            if first:
                # Serving its tools matters more than hearing of changes: go on without.
                log.warning(
                    "upstream %s: cannot listen for list changes (%s); they are read on refresh", name, exc.__class__.__name__
                )
                task_status.started()
            else:
                log.warning("upstream %s: its change stream was lost (%s)", name, exc.__class__.__name__)
                lost()
            return
        # Closed by the server (it may bound how long a stream lives): listen again, not in a tight loop.
        await anyio.sleep(RELISTEN_SECONDS)
