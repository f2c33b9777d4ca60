"""All upstreams of one gateway: connected at start (bounded by each one's timeout), their trusted tools added to the catalogue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from sqlalchemy import Engine

from mcp_acl.gateway.catalogue import Catalogue, NamespaceEntries
from mcp_acl.store.pins import generations, pin_first_use
from mcp_acl.store.upstreams import Upstream, list_upstreams
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.offer import entries, read_offer

log = logging.getLogger(__name__)

# How often a serving gateway looks for a re-read request when no commit was heard.
POLL_SECONDS = 1.0


class UpstreamPool:
    """One supervised connection per upstream; `engine` holds the pinned definitions (None: trust every tool, for tests)."""

    def __init__(self, upstreams: Sequence[Upstream], engine: Engine | None = None) -> None:
        self.connections = {up.name: UpstreamConnection(up) for up in upstreams}
        self.engine = engine
        # Upstreams left out at start because a tool module uses their namespace: never re-read.
        self._left_out: set[str] = set()
        self._due: set[str] = set()
        self._woken: anyio.Event | None = None
        for name, conn in self.connections.items():
            conn.on_reopen = lambda name=name: self._request(name)

    @classmethod
    def from_store(cls, engine: Engine) -> UpstreamPool:
        """The upstreams registered in the store."""
        with engine.connect() as conn:
            return cls(list_upstreams(conn), engine)

    async def run(
        self, catalogue: Catalogue, *, on_change: Callable[[], None] | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Open every connection, add the trusted tools of those that answered to `catalogue`, then keep them open until cancelled.

        An upstream that is down or slow at start adds no tools and does not
        hold the gateway up longer than its timeout; it is retried in the
        background. While serving, an upstream is re-read when it reconnects
        or when its generation moves in the store (`upstream refresh`,
        `upstream approve`); `on_change` is called after each re-read.
        """
        self._woken = anyio.Event()
        seen = await self._generations()
        async with anyio.create_task_group() as tg:
            for conn in self.connections.values():
                tg.start_soon(conn.supervise)
            # Each first attempt is bounded by its upstream's timeout, and they run side by side.
            for conn in self.connections.values():
                await conn.settled.wait()
            for conn in self.connections.values():
                await self._add_tools(catalogue, conn)
            task_status.started()
            await self._follow(catalogue, on_change, seen)

    def wake(self) -> None:
        """Look for re-read requests now (called on the event loop when something committed)."""
        if self._woken is not None:
            self._woken.set()

    def _request(self, name: str) -> None:
        self._due.add(name)
        self.wake()

    async def _generations(self) -> dict[str, int]:
        if self.engine is None:
            return {}
        return await anyio.to_thread.run_sync(_read_generations, self.engine)

    async def _follow(self, catalogue: Catalogue, on_change: Callable[[], None] | None, seen: dict[str, int]) -> None:
        """Re-read the upstreams that reconnected or whose generation moved, until cancelled."""
        while True:
            with anyio.move_on_after(POLL_SECONDS):
                await self._woken.wait()
            self._woken = anyio.Event()
            try:
                now = await self._generations()
            except Exception as exc:
                log.warning("upstreams: cannot look for re-read requests: %s", exc.__class__.__name__)
                continue
            due = self._due | {name for name, gen in now.items() if gen != seen.get(name, gen)}
            self._due, seen = set(), {**seen, **now}
            for name in sorted(due & set(self.connections) - self._left_out):
                await self._reread(catalogue, self.connections[name], on_change)

    async def _reread(self, catalogue: Catalogue, conn: UpstreamConnection, on_change: Callable[[], None] | None) -> None:
        name = conn.upstream.name
        if conn.client is None:
            return  # down: it is re-read when it reconnects
        specs = await self.trusted_specs(conn)
        if specs is None:
            return
        catalogue.replace_namespace(name, specs)
        log.info("upstream %s re-read: %s", name, specs.summary())
        if on_change is not None:
            on_change()

    async def add_tools_once(self, catalogue: Catalogue) -> None:
        """Connect, add the upstreams' trusted tools to `catalogue`, and close again (for commands that only show the catalogue)."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.run, catalogue)
            tg.cancel_scope.cancel()

    async def _add_tools(self, catalogue: Catalogue, conn: UpstreamConnection) -> None:
        name = conn.upstream.name
        if any(tool.startswith(f"{name}.") for tool in catalogue.tools):
            log.error("upstream %s left out: tools named %s.* are already loaded from a tool module", name, name)
            self._left_out.add(name)
            return
        specs = await self.trusted_specs(conn)
        if specs is None:
            return
        # Before the first request is served, so no cached view has seen the catalogue yet.
        catalogue.replace_namespace(name, specs)
        log.info("upstream %s: %s", name, specs.summary())

    async def trusted_specs(self, conn: UpstreamConnection) -> NamespaceEntries | None:
        """What the upstream offers, its tools and prompts only as pinned, as catalogue entries; None when it cannot be listed.

        The first read of an upstream with nothing pinned pins what it offers
        (trust on first use). A changed or new tool or prompt is withheld and logged.
        """
        name = conn.upstream.name
        try:
            offer = await read_offer(conn)
        except Exception as exc:
            log.warning("upstream %s: its tools could not be listed (%s)", name, exc.__class__.__name__)
            conn.broken()
            return None
        current = offer.definitions()
        pinned = current if self.engine is None else await anyio.to_thread.run_sync(pin_first_use, self.engine, name, current)
        return entries(conn, offer, pinned)


def _read_generations(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return generations(conn)
