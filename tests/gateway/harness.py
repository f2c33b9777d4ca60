"""A small real world for end-to-end tests: a migrated database with users, clients and
grants, a workspace and a shop database for the built-in tools, real signed tokens, the
real app under uvicorn on 127.0.0.1 (port 0) in a thread, and the SDK's real client.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import Engine, select

from auth.support import LoopbackServer  # tests/auth/support.py
from mcp_acl.app import create_app
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.tokens import mint_access_token
from mcp_acl.config import Settings
from mcp_acl.gateway.runtime import Gateway, build_gateway
from mcp_acl.gateway.specs import ToolConfig
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules
from mcp_acl.store import PolicyAdmin, make_engine, upgrade
from mcp_acl.store import tables as t

REPORTS_NOTE = "only files under reports/"
# A raw 2025-11-25 initialize, for tests that speak HTTP without the SDK client.
INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass
class World:
    """Everything a test needs to run the gateway and call it."""

    database_url: str
    engine: Engine
    settings: Settings
    home: Path
    grants: dict[str, int] = field(default_factory=dict)

    def token(self, user: str | None, client: str = "mcp-acl-cli", scopes: tuple[str, ...] = ("mcp",), ttl: timedelta = timedelta(hours=1)) -> str:
        """A real access token from the embedded issuer."""
        return mint_access_token(
            SigningKeys(self.engine), issuer=self.settings.embedded_issuer_url, audience=self.settings.resource_url,
            subject=user, client_id=client, scopes=scopes, ttl=ttl,
        )

    def tool_config(self) -> ToolConfig:
        """Where the built-in tools work in this world."""
        return ToolConfig(files_root=self.home / "workspace", sql_url=f"sqlite:///{self.home / 'shop.db'}")

    def gateway(self) -> Gateway:
        """A gateway over this world's database with the real built-in tools."""
        catalogue = load_tool_modules([builtin_tools_dir()], self.tool_config())
        return build_gateway(self.settings, self.engine, catalogue)

    def audit_rows(self, **where: Any) -> list:
        """Audit rows, oldest first, filtered by column values."""
        query = select(t.audit_events).order_by(t.audit_events.c.id)
        for column, value in where.items():
            query = query.where(t.audit_events.c[column] == value)
        with self.engine.connect() as conn:
            return list(conn.execute(query))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run `python -m mcp_acl ARGS` in another process."""
    return subprocess.run([sys.executable, "-m", "mcp_acl", *args], env=env, capture_output=True, text=True, timeout=120)


def make_world(database_url: str, home: Path) -> World:
    """Users alice (analyst) and bob (intern), clients mcp-acl-cli and a restricted ollama-agent."""
    engine = make_engine(database_url)
    upgrade(engine)
    world = World(database_url, engine, Settings(database_url=database_url), home)
    admin = PolicyAdmin(engine, actor="test")
    admin.add_role("analyst")
    admin.add_role("intern")
    admin.add_user("alice", ["analyst"])
    admin.add_user("bob", ["intern"])
    admin.add_client("mcp-acl-cli")
    admin.add_client("ollama-agent", restricted=True)
    g = world.grants
    g["alice-list"] = admin.add_grant("role:analyst", "tool:files.list")
    g["alice-read"] = admin.add_grant(
        "role:analyst", "tool:files.read", condition='args.path.startsWith("reports/")', note=REPORTS_NOTE
    )
    g["alice-select"] = admin.add_grant("role:analyst", "tool:sql.select", condition='args.table == "orders"')
    g["alice-write"] = admin.add_grant("role:analyst", "tool:files.write", condition='args.path.startsWith("drafts/")')
    g["alice-reports"] = admin.add_grant("role:analyst", "resource:file:///reports/*")
    g["bob-list"] = admin.add_grant("role:intern", "tool:files.list")
    for role in ("analyst", "intern"):
        g[f"{role}-prompt"] = admin.add_grant(f"role:{role}", "prompt:access-policy")
    for target in ("tool:files.list", "tool:files.read", "tool:sql.select", "resource:*", "prompt:*"):
        admin.add_grant("client:ollama-agent", target)
    _write_workspace(home)
    return world


def _write_workspace(home: Path) -> None:
    reports = home / "workspace" / "reports"
    reports.mkdir(parents=True)
    (reports / "q3.md").write_text("# Q3\nRevenue grew 12%.\n")
    (home / "workspace" / "notes").mkdir()
    (home / "workspace" / "notes" / "todo.txt").write_text("call the bank\n")
    with sqlite3.connect(home / "shop.db") as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL)")
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
        db.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(1, "acme", 120.0), (2, "globex", 80.5)])
        db.execute("INSERT INTO customers VALUES (1, 'acme', 'ceo@acme.test')")


@pytest.fixture
def world(database_url, tmp_path) -> Iterator[World]:
    """The test world on each database (SQLite and PostgreSQL)."""
    w = make_world(database_url, tmp_path / "home")
    yield w
    w.engine.dispose()


@pytest.fixture
def sqlite_world(sqlite_url, tmp_path) -> Iterator[World]:
    """The test world on SQLite only."""
    w = make_world(sqlite_url, tmp_path / "home")
    yield w
    w.engine.dispose()


class LiveServer:
    """The app under uvicorn on 127.0.0.1, port 0, in a background thread (the auth tests' runner), lifespan on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._loopback = LoopbackServer(app, lifespan="on")
        self._base = ""

    def __enter__(self) -> LiveServer:
        self._base = self._loopback.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._loopback.__exit__(*exc_info)

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return self._base

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint."""
        return f"{self.base}/mcp"


async def get_stream_open(live: LiveServer, session_id: str, timeout: float = 10.0) -> None:
    """Wait until the client's GET stream is connected, so a notification cannot be dropped before it.

    Test-only peek into the SDK's private transport state (mcp 2.3).
    """
    from mcp.server.streamable_http import GET_STREAM_KEY

    manager = live.app.state.session_manager
    with anyio.fail_after(timeout):
        while GET_STREAM_KEY not in getattr(manager._server_instances.get(session_id), "_request_streams", {}):
            await anyio.sleep(0.02)


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `predicate` until it returns something true; fail after `timeout` seconds."""
    with anyio.fail_after(timeout):
        while not (found := predicate()):
            await anyio.sleep(0.02)
    return found


def serve(world: World, gateway: Gateway | None = None) -> LiveServer:
    """The real app for `world`, ready to be entered."""
    return LiveServer(create_app(world.settings, world.engine, gateway=gateway or world.gateway()))


def bearer(token: str) -> httpx2.AsyncClient:
    """An HTTP client sending `token` as a bearer token."""
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=300))


@asynccontextmanager
async def connect(url: str, token: str, mode: str = "legacy", **options: Any) -> AsyncIterator[Client]:
    """The SDK's client on `url` with `token`; `mode` "legacy" (2025-11-25 sessions) or "auto" (2026-07-28)."""
    async with bearer(token) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **options) as client:
            yield client


def text_of(result: Any) -> str:
    """The text of a tool result's first content block."""
    return result.content[0].text
