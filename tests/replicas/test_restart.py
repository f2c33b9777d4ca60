"""PostgreSQL restarted under load: two replicas refuse every call while it is down
(fail closed), serve again once it is back, and the audit trail loses nothing.

The restart happens on a cluster of this test's own (.ci/pg-cluster on a free
port), never on the cluster the other tests share.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.harness import connect, make_world
from mcp_acl.audit import AuditLog
from mcp_acl.store import PolicyAdmin
from tests.conftest import POSTGRES_ADMIN_URL, REPO_ROOT, REQUIRE_POSTGRES

from .conftest import child_env
from .harness import OwnCluster, free_port, replicas

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_cluster() -> Iterator[tuple[OwnCluster, str]]:
    """A cluster of this test's own, and its admin URL; removed after."""
    # Skipped (or, in CI, failed) alongside the other PostgreSQL tests.
    if not POSTGRES_ADMIN_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MCP_ACL_REQUIRE_POSTGRES=1 but MCP_ACL_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need MCP_ACL_TEST_POSTGRES_URL (see .ci/pg-cluster)")
    cluster = OwnCluster(os.path.join(REPO_ROOT, ".ci", "pg-cluster"), free_port())
    try:
        try:
            admin_url = cluster.start()
        except RuntimeError as exc:
            if REQUIRE_POSTGRES:
                raise
            pytest.skip(f"no PostgreSQL cluster of its own for the restart test: {exc}")
        yield cluster, admin_url
    finally:
        cluster.remove()


@dataclass
class Call:
    """One tools/call: the phase of the run when it started and ended, which replica, and whether it was allowed."""

    started: str
    ended: str
    replica: int
    allowed: bool


async def test_postgres_restarted_under_load(own_cluster, tmp_path):
    cluster, admin_url = own_cluster
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "mcp_acl_restart"'))
    admin.dispose()
    world = make_world(make_url(admin_url).set(database="mcp_acl_restart").render_as_string(hide_password=False), tmp_path / "home")
    PolicyAdmin(world.engine).add_user("hana")
    PolicyAdmin(world.engine).add_grant("user:hana", "tool:files.list")
    world.engine.dispose()  # the test's own pool must not hold connections across the restart
    token = world.token("hana")
    env = child_env(world.home)
    phase = ["up"]
    calls: list[Call] = []

    def count(started: str, replica: int, allowed: bool | None = None) -> int:
        return sum(
            c.started == started and c.replica == replica and (allowed is None or c.allowed == allowed) for c in calls
        )

    async def caller(n: int, url: str) -> None:
        while phase[0] != "done":
            opened = phase[0]
            try:
                async with connect(url, token, mode="auto") as hana:
                    opened = None
                    while phase[0] != "done":
                        started, allowed = phase[0], False
                        try:
                            allowed = not (await hana.call_tool("files.list", {})).is_error
                        finally:
                            calls.append(Call(started, phase[0], n, allowed))
                        await anyio.sleep(0.01)
            except Exception:
                # Refused before a tools/call could be answered: while the database is down the
                # token cannot be checked, so a new session is refused at the door (503). Counted
                # as a refused call, since a client cannot tell it apart.
                if opened is not None:
                    calls.append(Call(opened, phase[0], n, False))
                await anyio.sleep(0.05)

    async def until(predicate, timeout: float = 60) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                await anyio.sleep(0.02)

    with replicas(env, world.database_url, 2, tmp_path / "logs") as two:
        async with anyio.create_task_group() as tg:
            for n, replica in enumerate(two):
                for _ in range(2):
                    tg.start_soon(caller, n, replica.url)
            await until(lambda: all(count("up", n, True) >= 10 for n in range(2)))
            phase[0] = "stopping"
            await anyio.to_thread.run_sync(cluster.stop)
            phase[0] = "down"
            await until(lambda: all(sum(c.started == c.ended == "down" and c.replica == n for c in calls) >= 3 for n in range(2)))
            phase[0] = "starting"
            await anyio.to_thread.run_sync(cluster.resume)
            phase[0] = "back"
            await until(lambda: all(count("back", n, True) >= 5 for n in range(2)))
            phase[0] = "done"

    # Fail closed: not one call made while the database was down was allowed, on either replica.
    assert not [c for c in calls if c.started == c.ended == "down" and c.allowed]
    allowed = sum(c.allowed for c in calls)
    # What `mcp-acl audit verify` runs (the CLI itself is run by the three-replica test).
    assert AuditLog(world.engine).verify().ok
    # Every allowed call has its decision row and its outcome: none lost in the restart.
    decided = len(world.audit_rows(kind="decision", subject="hana", decision="allow"))
    ended = len(world.audit_rows(kind="outcome", subject="hana", outcome="ok"))
    world.engine.dispose()
    assert decided == allowed and ended == allowed
