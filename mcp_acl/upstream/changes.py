"""Hearing an upstream say its lists changed (notifications/{tools,resources,prompts}/list_changed).

On the 2025-11-25 handshake a server sends them on its own; on 2026-07-28 a
client must hold a `subscriptions/listen` stream open to get them. Either
way the SDK's session hands each notification to the client's message
handler, so that handler is the one place the pool is told to re-read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import mcp_types as types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger(__name__)

LIST_CHANGED = (types.ToolListChangedNotification, types.ResourceListChangedNotification, types.PromptListChangedNotification)


def change_listener(name: str, changed: Callable[[], None]):
    """A client message handler that calls `changed` when the upstream says one of its lists changed."""

    async def heard(message) -> None:
        if isinstance(message, LIST_CHANGED):
            log.info("upstream %s: %s", name, message.method)
            changed()
        else:
            await anyio.lowlevel.checkpoint()

    return heard


@asynccontextmanager
async def listening(client, name: str, lost: Callable[[], None]) -> AsyncIterator[None]:
    """On a 2026-07-28 connection to a server that offers list changes, keep a `subscriptions/listen` stream open.

    Its events reach the message handler (see change_listener). A stream
    that ends while the session is open calls `lost`: without it no change
    would be heard again, so the connection is reopened (and re-read).
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
    async with AsyncExitStack() as stack:
        sub = None
        try:
            sub = await stack.enter_async_context(client.listen(**wanted))
        except Exception as exc:
            # Serving its tools matters more than hearing of changes: go on without.
            log.warning("upstream %s: cannot listen for list changes (%s); they are read on refresh", name, exc.__class__.__name__)
        if sub is None:
            yield
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_ended, sub, name, lost)
            yield
            tg.cancel_scope.cancel()


async def _until_ended(sub, name: str, lost: Callable[[], None]) -> None:
    try:
        async for _ in sub:
            pass  # each event was handed to the message handler already
    except Exception as exc:
        log.warning("upstream %s: its change stream was lost (%s)", name, exc.__class__.__name__)
    lost()
