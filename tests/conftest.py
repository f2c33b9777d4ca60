"""Shared fixtures: a fresh, migrated database on real SQLite and real PostgreSQL.

PostgreSQL tests use the server at MCP_ACL_TEST_POSTGRES_URL (an admin URL;
each test gets its own new database there). Without it they skip, unless
MCP_ACL_REQUIRE_POSTGRES=1 (as in CI), when they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mcp_acl.store import make_engine, upgrade

POSTGRES_ADMIN_URL = os.environ.get("MCP_ACL_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("MCP_ACL_REQUIRE_POSTGRES") == "1"


def _postgres_database() -> Iterator[str]:
    if not POSTGRES_ADMIN_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MCP_ACL_REQUIRE_POSTGRES=1 but MCP_ACL_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need MCP_ACL_TEST_POSTGRES_URL (see .ci/pg-cluster)")
    name = f"mcp_acl_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL at MCP_ACL_TEST_POSTGRES_URL is not usable: {exc}")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    """The URL of a new, empty database: SQLite in a temp folder, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mcp-acl.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """An SQLite database URL only, for tests that are about something other than the store."""
    return f"sqlite:///{tmp_path / 'mcp-acl.db'}"


@pytest.fixture
def engine(database_url):
    """A migrated engine on each database."""
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch) -> None:
    # No test may touch the developer's real ~/.local/share/mcp-acl.
    monkeypatch.setenv("MCP_ACL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MCP_ACL_DATABASE_URL", raising=False)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def subprocess_env(tmp_path) -> dict[str, str]:
    """An environment for child processes that import this checkout's mcp_acl."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MCP_ACL_HOME"] = str(tmp_path / "home")
    env.pop("MCP_ACL_DATABASE_URL", None)
    return env
