"""The parts one gateway process serves with, wired once (no import-time globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from sqlalchemy import Engine

from mcp_acl.audit import AuditLog
from mcp_acl.config import Settings, data_home
from mcp_acl.gateway.calls import CallLedger
from mcp_acl.gateway.catalogue import Catalogue
from mcp_acl.gateway.edge import CallerEdge
from mcp_acl.gateway.guard import SessionGuard
from mcp_acl.gateway.holds import Holds
from mcp_acl.gateway.invocation import Invoker
from mcp_acl.gateway.notifier import Notifier
from mcp_acl.gateway.outbox import Outboxes
from mcp_acl.gateway.revoked import RevokedTokens
from mcp_acl.gateway.server import GatewayServer, build_server
from mcp_acl.gateway.shadow import ShadowRecorder
from mcp_acl.gateway.sessions import SessionStore
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules, tool_config_from_env, tool_slots_from_env
from mcp_acl.gateway.views import CatalogueViews
from mcp_acl.store import PolicyLoader
from mcp_acl.store.approvals import ApprovalStore
from mcp_acl.store.commits import watch_commits
from mcp_acl.store.lookup import one_connection, standing_connection
from mcp_acl.upstream import UpstreamPool

if TYPE_CHECKING:
    from mcp_acl.observe.metrics import Metrics


@dataclass
class Gateway:
    """The catalogue, the policy, the audit log, sessions and the notifier of one process."""

    settings: Settings
    engine: Engine
    catalogue: Catalogue
    invoker: Invoker
    sessions: SessionStore
    notifier: Notifier
    outboxes: Outboxes
    # Upstream MCP servers whose tools join the catalogue when the background starts.
    upstreams: UpstreamPool = field(default_factory=lambda: UpstreamPool(()))
    # More to wake when a commit is heard (the HTTP app's killed-session reaper).
    commit_listeners: list[Callable[[], None]] = field(default_factory=list)
    # The calls running (a graceful shutdown waits for them) and whether new ones are taken.
    calls: CallLedger = field(default_factory=CallLedger)
    # Whether commits are being heard (store/commits.py); None: nothing to listen to (an in-memory database).
    listening: bool | None = None
    # Counts the commit signals when `serve --metrics` (observe/metrics.py).
    metrics: Metrics | None = None
    # The access-token deny-list, checked at the door (HTTP) and in every admission.
    revoked: RevokedTokens | None = None

    async def run_background(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The notifier, the sessions' outboxes and the outcome writer, until cancelled (run in the serving task group)."""
        try:
            async with anyio.create_task_group() as tg:
                # First: the upstreams' tools must be in the catalogue before any listing is built.
                await tg.start(partial(self.upstreams.run, self.catalogue, on_change=self._catalogue_changed))
                await tg.start(self.outboxes.run)
                await tg.start(self.notifier.run)
                await tg.start(partial(watch_commits, self.engine, self._heard_commit, on_listening=self._listening))
                await tg.start(self.invoker.outcomes.run)
                if self.invoker.shadow is not None:
                    await tg.start(self.invoker.shadow.run)
                task_status.started()
        finally:
            self.invoker.close()

    def _listening(self, listening: bool) -> None:
        self.listening = listening

    def _heard_commit(self) -> None:
        if self.metrics is not None:
            self.metrics.heard_commit()
        # A commit may be a policy change (the notifier) or a request to re-read an upstream (the pool).
        self.notifier.wake()
        self.upstreams.wake()
        for wake in self.commit_listeners:
            wake()

    def _catalogue_changed(self) -> None:
        # An upstream was re-read: no cached listing may outlive the old catalogue,
        # and sessions whose view changed are told (list_changed).
        self.notifier.views.forget()
        self.notifier.catalogue_changed()

    def server(self, edge: CallerEdge) -> tuple[GatewayServer, SessionGuard]:
        """An MCP server for one transport, and the session guard it runs every request through."""
        outboxes = self.outboxes if edge.transport == "http" else None
        guard = SessionGuard(edge, self.sessions, self.notifier, outboxes)
        return build_server(self.invoker, edge, guard, self.notifier, self.calls, self.revoked), guard


def load_catalogue(settings: Settings) -> Catalogue:
    """The built-in tools plus those in `MCP_ACL_TOOLS_PATH`; raises ToolLoadError."""
    dirs = [builtin_tools_dir(), *settings.tools_path]
    return load_tool_modules(dirs, tool_config_from_env(data_home()))


def build_gateway(settings: Settings, engine: Engine, catalogue: Catalogue | None = None) -> Gateway:
    """Wire a gateway over `engine`; the catalogue is loaded from the tool paths unless given.

    Raises ToolLoadError for a tool module or a tool setting (`MCP_ACL_TOOL_*`) that cannot be used.
    """
    catalogue = catalogue if catalogue is not None else load_catalogue(settings)
    policies = PolicyLoader(engine)
    views = CatalogueViews(catalogue)
    invoker = Invoker(
        policies, catalogue, views, AuditLog(engine),
        connection=partial(one_connection, engine), standing=standing_connection(engine),
        slots=tool_slots_from_env(),
    )
    # Calls held for approval wake on any commit heard (an approver's, from any host).
    invoker.holds = Holds(ApprovalStore(engine), invoker.audit, page_base=settings.embedded_issuer_url)
    invoker.shadow = ShadowRecorder(engine)
    gateway = Gateway(
        settings=settings,
        engine=engine,
        catalogue=catalogue,
        invoker=invoker,
        sessions=SessionStore(engine),
        notifier=Notifier(policies, views),
        outboxes=Outboxes(),
        upstreams=UpstreamPool.from_store(engine),
        revoked=RevokedTokens(engine, invoker.standing),
    )
    gateway.commit_listeners.append(invoker.holds.wake)
    return gateway
