"""All upstreams of one gateway: connected at start (bounded by each one's timeout), their trusted tools added to the catalogue.

While serving, the pool follows the store: an upstream added there joins
(its connection opens, its tools are read and added), one removed leaves
(its tools go, its connection closes), without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus
from sqlalchemy import Engine

from mcp_acl.gateway.catalogue import Catalogue, NamespaceEntries
from mcp_acl.store.pins import Pins, generations, pin_first_use, pinned_definitions
from mcp_acl.store.upstreams import Upstream, list_upstreams
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.health import HealthReports
from mcp_acl.upstream.offer import entries, pinned_offer, read_offer, withheld_tools

log = logging.getLogger(__name__)

# How often a serving gateway looks for a re-read request when no commit was heard.
POLL_SECONDS = 1.0


class UpstreamPool:
    """One supervised connection per upstream; `engine` holds the pinned definitions (None: trust every tool, for tests)."""

    def __init__(self, upstreams: Sequence[Upstream], engine: Engine | None = None) -> None:
        self.connections: dict[str, UpstreamConnection] = {}
        self.engine = engine
        # Upstreams left out because a tool module uses their namespace: never re-read.
        self._left_out: set[str] = set()
        self._due: set[str] = set()
        self._woken: anyio.Event | None = None
        # While running: the task group the connections are supervised in, and how to stop each one.
        self._tg: TaskGroup | None = None
        self._stops: dict[str, anyio.CancelScope] = {}
        self.health = HealthReports(engine)
        for up in upstreams:
            self._connection(up)

    def _connection(self, up: Upstream) -> UpstreamConnection:
        conn = self.connections[up.name] = UpstreamConnection(up)
        conn.on_reopen = conn.on_list_changed = lambda name=up.name: self._request(name)
        return conn

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
        `upstream approve`), and upstreams added to or removed from the store
        join or leave; `on_change` is called after each change of the catalogue.
        """
        self._woken = anyio.Event()
        seen = await self._generations()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for conn in self.connections.values():
                    self._start(conn)
                # Each first attempt is bounded by its upstream's timeout, and they run side by side.
                for conn in self.connections.values():
                    await conn.settled.wait()
                for conn in self.connections.values():
                    await self._add_tools(catalogue, conn)
                task_status.started()
                await self._follow(catalogue, on_change, seen)
        finally:
            self._tg = None
            await self.health.stopped()

    def _start(self, conn: UpstreamConnection, *, joined: bool = False) -> None:
        """Supervise `conn` in the pool's task group, stoppable on its own; a `joined` one is read once it first opens."""
        stop = self._stops[conn.upstream.name] = anyio.CancelScope()

        async def supervised() -> None:
            with stop:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(conn.supervise)
                    # Per-caller sessions (token exchange) are closed with the upstream.
                    if conn.callers is not None:
                        tg.start_soon(conn.callers.run)
                    if joined:
                        await conn.settled.wait()
                        self._request(conn.upstream.name)

        self._tg.start_soon(supervised)

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
        return (await anyio.to_thread.run_sync(_read_store, self.engine))[1]

    async def _follow(self, catalogue: Catalogue, on_change: Callable[[], None] | None, seen: dict[str, int]) -> None:
        """Follow the store until cancelled: upstreams added or removed there, and those that reconnected or whose generation moved are re-read."""
        while True:
            await self.health.report(self.connections, self._left_out)
            with anyio.move_on_after(POLL_SECONDS):
                await self._woken.wait()
            self._woken = anyio.Event()
            if self.engine is None:
                stored, now = None, {}
            else:
                try:
                    stored, now = await anyio.to_thread.run_sync(_read_store, self.engine)
                except Exception as exc:
                    log.warning("upstreams: cannot look for re-read requests: %s", exc.__class__.__name__)
                    continue
            if stored is not None:
                self._follow_registry(catalogue, on_change, stored)
            due = self._due | {name for name, gen in now.items() if gen != seen.get(name, gen)}
            self._due, seen = set(), {**seen, **now}
            for name in sorted(due & set(self.connections) - self._left_out):
                await self._reread(catalogue, self.connections[name], on_change)

    def _follow_registry(self, catalogue: Catalogue, on_change: Callable[[], None] | None, stored: list[Upstream]) -> None:
        """Drop the upstreams no longer stored (or stored anew with other settings); start those new to this gateway."""
        wanted = {up.name: up for up in stored}
        left = [name for name, conn in self.connections.items() if wanted.get(name) != conn.upstream]
        for name in left:
            self._drop(catalogue, name)
        for name, up in wanted.items():
            if name not in self.connections:
                self._join(catalogue, up)
        # A joining upstream changes the catalogue only once it is read (then `_reread` tells).
        if left and on_change is not None:
            on_change()

    def _drop(self, catalogue: Catalogue, name: str) -> None:
        """`name` leaves: no more forwarding to it (its tools go), and its connection closes."""
        self.connections.pop(name)
        self._stops.pop(name).cancel()
        self._due.discard(name)
        self.health.forget(name)
        if name in self._left_out:
            self._left_out.discard(name)  # the namespace is a tool module's: its tools stay
        else:
            catalogue.replace_namespace(name, NamespaceEntries())
        log.info("upstream %s removed: its tools, resources and prompts left the catalogue", name)

    def _join(self, catalogue: Catalogue, up: Upstream) -> None:
        """`up` was added while serving: connect to it; its trusted tools join when it first opens."""
        conn = self._connection(up)
        if any(tool.startswith(f"{up.name}.") for tool in catalogue.tools):
            log.error("upstream %s left out: tools named %s.* are already loaded from a tool module", up.name, up.name)
            self._left_out.add(up.name)
            self._stops[up.name] = anyio.CancelScope()  # never started: nothing to stop
            return
        self._start(conn, joined=True)
        log.info("upstream %s added: connecting", up.name)

    async def _reread(self, catalogue: Catalogue, conn: UpstreamConnection, on_change: Callable[[], None] | None) -> None:
        name = conn.upstream.name
        specs = await self.trusted_specs(conn)
        if specs is None:
            # Down: it is re-read when it reconnects. One that joined while down lists its pins meanwhile.
            if any(tool.startswith(f"{name}.") for tool in catalogue.tools):
                return
            specs = await self._pinned_entries(conn)
            if specs is None:
                return
        catalogue.replace_namespace(name, specs)
        log.info("upstream %s re-read: %s", name, specs.summary())
        if on_change is not None:
            on_change()

    async def add_tools_once(self, catalogue: Catalogue) -> None:
        """Connect, add the upstreams' trusted tools to `catalogue`, and close again (for commands that only show the catalogue)."""
        self.health.enabled = False  # not a serving gateway: nothing to report
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
            specs = await self._pinned_entries(conn)
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
        if conn.client is None:
            return None  # down: nothing was read
        try:
            offer = await read_offer(conn)
        except Exception as exc:
            log.warning("upstream %s: its tools could not be listed (%s)", name, exc.__class__.__name__)
            conn.broken()
            return None
        current = offer.definitions()
        pinned = current if self.engine is None else await anyio.to_thread.run_sync(pin_first_use, self.engine, name, current)
        found = entries(conn, offer, pinned)
        self.health.tools_read(name, len(found.tools), withheld_tools(offer, pinned))
        return found


    async def _pinned_entries(self, conn: UpstreamConnection) -> NamespaceEntries | None:
        """While `conn` is down: its pinned tools and prompts as entries whose calls are refused as unreachable; None when nothing is pinned."""
        if self.engine is None:
            return None
        try:
            pinned = await anyio.to_thread.run_sync(_read_pins, self.engine, conn.upstream.name)
        except Exception as exc:
            log.warning("upstream %s: its pinned definitions could not be read (%s)", conn.upstream.name, exc.__class__.__name__)
            return None
        if not pinned:
            return None
        found = entries(conn, pinned_offer(pinned), pinned)
        log.warning(
            "upstream %s is down: its pinned %s are listed, and calls are refused until it is back",
            conn.upstream.name, found.summary(),
        )
        return found


def _read_pins(engine: Engine, upstream: str) -> Pins:
    with engine.connect() as conn:
        return pinned_definitions(conn, upstream)


def _read_store(engine: Engine) -> tuple[list[Upstream], dict[str, int]]:
    """The stored upstreams and their generations, read together."""
    with engine.connect() as conn:
        return list_upstreams(conn), generations(conn)
