"""The real gateway over the demo seed, on loopback, for agent tests.

`demo` is a migrated database (SQLite or PostgreSQL, from `database_url`)
seeded by `mcp_acl.demo.seed_demo`, plus one grant that lets bob see
files.read but use it on notes/ only; `gateway` serves `create_app` on
127.0.0.1, port 0. Tokens are real, signed by the embedded issuer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from mcp_acl.app import create_app
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.tokens import mint_access_token
from mcp_acl.config import Settings, data_home
from mcp_acl.demo import seed_demo
from mcp_acl.store import PolicyAdmin, make_engine, upgrade
from mcp_acl.store import tables as t
from tests.auth.support import LoopbackServer

INTERNS_READ_NOTES = 'args.path.startsWith("notes/")'


@dataclass
class Demo:
    """The seeded demo database and the settings the gateway runs with."""

    engine: Engine
    settings: Settings
    bob_read_grant: int

    def token(self, user: str, client: str = "ollama-agent", scopes: tuple[str, ...] = ("mcp",)) -> str:
        """A real access token from the embedded issuer, as the agent client."""
        return mint_access_token(
            SigningKeys(self.engine), issuer=self.settings.embedded_issuer_url, audience=self.settings.resource_url,
            subject=user, client_id=client, scopes=scopes, ttl=timedelta(hours=1))

    def grant_id(self, principal: str, target: str) -> int:
        """The id of the one grant of `principal` on exactly `target`."""
        (grant,) = [g for g in PolicyAdmin(self.engine).list_grants(principal=principal) if g.target == target]
        return grant.id

    def tool_calls_audited(self, subject: str) -> list[tuple[str, str]]:
        """(target, decision) of every tools/call decision for `subject`, oldest first."""
        query = (select(t.audit_events.c.target, t.audit_events.c.decision)
                 .where(t.audit_events.c.kind == "decision", t.audit_events.c.action == "tools/call",
                        t.audit_events.c.subject == subject)
                 .order_by(t.audit_events.c.id))
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]


def make_demo(database_url: str) -> Demo:
    """The demo seed, plus one grant so bob can see files.read but not use it on reports."""
    engine = make_engine(database_url)
    upgrade(engine)
    seed_demo(engine, data_home())
    bob_read = PolicyAdmin(engine, actor="test").add_grant(
        "role:intern", "tool:files.read", condition=INTERNS_READ_NOTES, note="Interns may read notes/ only.")
    return Demo(engine, Settings(database_url=database_url), bob_read)


@pytest.fixture
def demo(database_url) -> Iterator[Demo]:
    """The demo on each database (SQLite and PostgreSQL)."""
    world = make_demo(database_url)
    yield world
    world.engine.dispose()


@pytest.fixture
def sqlite_demo(sqlite_url) -> Iterator[Demo]:
    """The demo on SQLite only, for tests about something other than the store."""
    world = make_demo(sqlite_url)
    yield world
    world.engine.dispose()


def serve_demo(world: Demo) -> Iterator[str]:
    """Serve the real app for `world` on 127.0.0.1, port 0; yield its MCP endpoint."""
    with LoopbackServer(create_app(world.settings, world.engine), lifespan="on") as base:
        yield base + "/mcp"


@pytest.fixture
def gateway_url(demo) -> Iterator[str]:
    """The real gateway's MCP endpoint, over the demo on each database."""
    yield from serve_demo(demo)


@pytest.fixture
def sqlite_gateway_url(sqlite_demo) -> Iterator[str]:
    """The real gateway's MCP endpoint, over the SQLite demo."""
    yield from serve_demo(sqlite_demo)
