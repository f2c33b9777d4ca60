"""A quota holds across three `mcp-acl serve` processes on one PostgreSQL database.

Concurrent calls from the SDK's client, spread over the replicas, are
admitted exactly as many times as the quota allows; `mcp-acl usage` in
another process reports that count.
"""

from __future__ import annotations

import json

import anyio
import pytest

from gateway.harness import connect
from mcp_acl.store import PolicyAdmin

from .harness import cli

pytestmark = pytest.mark.postgres


async def test_concurrent_calls_over_three_replicas_stay_within_the_quota(pg_world, env, three):
    admin = PolicyAdmin(pg_world.engine)
    admin.add_user("quota-user")
    grant = admin.add_grant("user:quota-user", "tool:files.list", limit="9/week", rate="1000/min")
    token = pg_world.token("quota-user")
    admitted: list[bool] = []

    async def session(url: str) -> None:
        async with connect(url, token) as client:
            async with anyio.create_task_group() as calls:
                for _ in range(6):
                    calls.start_soon(one_call, client)

    async def one_call(client) -> None:
        admitted.append(not (await client.call_tool("files.list", {})).is_error)

    async with anyio.create_task_group() as group:
        for replica in three:
            for _ in range(2):
                group.start_soon(session, replica.url)
    assert len(admitted) == 36 and sum(admitted) == 9
    allows = pg_world.audit_rows(kind="decision", subject="quota-user", decision="allow")
    assert len(allows) == 9 and {a.grant_id for a in allows} == {grant}
    refusals = pg_world.audit_rows(kind="decision", subject="quota-user", decision="deny")
    assert len(refusals) == 27 and all("has used up the quota" in r.reason for r in refusals)
    shown = json.loads(cli(env, "usage", "--user", "quota-user", "--all", "--json", "--database", pg_world.database_url).stdout)
    # The calls may straddle a minute: the rate's count is then split over two windows.
    assert {kind: sum(r["calls"] for r in shown if r["kind"] == kind) for kind in ("limit", "rate")} == {"limit": 9, "rate": 9}
