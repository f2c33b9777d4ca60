"""Fixtures for the embedded issuer's tests (see harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from mcp_acl.store import PolicyAdmin


def _run(database_url: str, tmp_path) -> Iterator:
    # Imported here: the store tests need no served app.
    from tests.oauth.harness import start_world

    world = start_world(database_url, tmp_path / "home")
    try:
        yield world
    finally:
        world.close()
        world.live.stop()
        world.engine.dispose()


@pytest.fixture
def oauth(sqlite_url, tmp_path) -> Iterator:
    """The served world on SQLite."""
    yield from _run(sqlite_url, tmp_path)


@pytest.fixture
def oauth_any(database_url, tmp_path) -> Iterator:
    """The served world on each database (SQLite and PostgreSQL)."""
    yield from _run(database_url, tmp_path)


@pytest.fixture
def principals(engine):
    """User alice and clients app and other, on each database: what codes and tokens refer to."""
    admin = PolicyAdmin(engine)
    admin.add_user("alice")
    admin.add_client("app")
    admin.add_client("other")
    return engine


def expire_all(engine, table, ago: timedelta = timedelta(seconds=1)) -> None:
    """Move every row's expiry of `table` into the past, `ago` before now."""
    with engine.begin() as conn:
        conn.execute(update(table).values(expires_at=datetime.now(timezone.utc) - ago))


@pytest.fixture
def expire():
    """`expire(engine, table[, ago])`: every row of `table` expired (a second) ago."""
    return expire_all


@pytest.fixture
def documents():
    """A loopback server for client metadata documents (tests/oauth/test_cimd.py), stopped after the test."""
    from tests.oauth.test_cimd import DocumentServer

    server = DocumentServer()
    yield server
    server.stop()
