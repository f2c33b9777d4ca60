"""Fixtures for the replica tests: one PostgreSQL database (skipped like the other
PostgreSQL tests without MCP_ACL_TEST_POSTGRES_URL) and three replicas serving it,
shared by the tests of a module: starting a replica costs seconds."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gateway.harness import World, make_world
from tests.conftest import REPO_ROOT, _postgres_database

from .harness import Replica, replicas


def child_env(home) -> dict[str, str]:
    """The environment of replicas and CLI runs: this checkout's mcp_acl, the world's home."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MCP_ACL_HOME"] = str(home)
    env.pop("MCP_ACL_DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def pg_world(tmp_path_factory) -> Iterator[World]:
    """The gateway tests' world (alice, bob, their grants, a workspace) on a new PostgreSQL database."""
    for url in _postgres_database():
        world = make_world(url, tmp_path_factory.mktemp("replicas") / "home")
        try:
            yield world
        finally:
            world.engine.dispose()


@pytest.fixture(scope="module")
def env(pg_world) -> dict[str, str]:
    """The environment for child processes."""
    return child_env(pg_world.home)


@pytest.fixture(scope="module")
def three(pg_world, env) -> Iterator[list[Replica]]:
    """Three replicas serving `pg_world`'s database."""
    with replicas(env, pg_world.database_url, 3, pg_world.home.parent / "logs") as started:
        yield started
