"""All upstreams of one gateway: connected at start (bounded by each one's timeout), their tools added to the catalogue."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus
from sqlalchemy import Engine

from mcp_acl.gateway.catalogue import Catalogue
from mcp_acl.store.upstreams import Upstream, list_upstreams
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.tools import read_tools

log = logging.getLogger(__name__)


class UpstreamPool:
    """One supervised connection per upstream."""

    def __init__(self, upstreams: Sequence[Upstream]) -> None:
        self.connections = {up.name: UpstreamConnection(up) for up in upstreams}

    @classmethod
    def from_store(cls, engine: Engine) -> UpstreamPool:
        """The upstreams registered in the store."""
        with engine.connect() as conn:
            return cls(list_upstreams(conn))

    async def run(self, catalogue: Catalogue, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open every connection, add the tools of those that answered to `catalogue`, then keep them open until cancelled.

        An upstream that is down or slow at start adds no tools and does not
        hold the gateway up longer than its timeout; it is retried in the background.
        """
        async with anyio.create_task_group() as tg:
            for conn in self.connections.values():
                tg.start_soon(conn.supervise)
            # Each first attempt is bounded by its upstream's timeout, and they run side by side.
            for conn in self.connections.values():
                await conn.settled.wait()
            for conn in self.connections.values():
                await self._add_tools(catalogue, conn)
            task_status.started()

    async def add_tools_once(self, catalogue: Catalogue) -> None:
        """Connect, add the upstreams' tools to `catalogue`, and close again (for commands that only show the catalogue)."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.run, catalogue)
            tg.cancel_scope.cancel()

    async def _add_tools(self, catalogue: Catalogue, conn: UpstreamConnection) -> None:
        name = conn.upstream.name
        if any(tool.startswith(f"{name}.") for tool in catalogue.tools):
            log.error("upstream %s left out: tools named %s.* are already loaded from a tool module", name, name)
            return
        try:
            specs = await read_tools(conn)
        except Exception as exc:
            log.warning("upstream %s: its tools could not be listed (%s)", name, exc.__class__.__name__)
            conn.broken()
            return
        # Before the first request is served, so no cached view has seen the catalogue yet.
        catalogue.tools.update({spec.name: spec for spec in specs})
        log.info("upstream %s: %d tools", name, len(specs))
