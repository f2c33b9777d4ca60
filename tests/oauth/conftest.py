"""Fixtures for the embedded issuer's tests (see harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcp_acl.store import PolicyAdmin
from tests.oauth.harness import OAuthWorld, start_world


def _run(database_url: str, tmp_path) -> Iterator[OAuthWorld]:
    world = start_world(database_url, tmp_path / "home")
    try:
        yield world
    finally:
        world.close()
        world.live.stop()
        world.engine.dispose()


@pytest.fixture
def oauth(sqlite_url, tmp_path) -> Iterator[OAuthWorld]:
    """The served world on SQLite."""
    yield from _run(sqlite_url, tmp_path)


@pytest.fixture
def oauth_any(database_url, tmp_path) -> Iterator[OAuthWorld]:
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
