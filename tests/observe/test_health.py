"""/readyz: the database, the loaded policy and the commit listener, each named when missing."""

from __future__ import annotations

import anyio
import httpx2
from sqlalchemy import text

from gateway.harness import LiveServer
from mcp_acl.app import create_app
from mcp_acl.store.commits import CHANNEL


async def test_readyz_names_a_lost_commit_listener_until_it_is_back(world):
    app = create_app(world.settings, world.engine, gateway=world.gateway())
    seen = []
    with LiveServer(app) as live:
        async with httpx2.AsyncClient() as http:
            first = await http.get(f"{live.base}/readyz")
            if world.engine.dialect.name == "postgresql":
                # Cut the gateway's LISTEN connection, as a network fault or a restart would.
                with world.engine.begin() as conn:
                    cut = conn.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query = :listen"
                    ), {"listen": f"LISTEN {CHANNEL}"}).scalars().all()
                assert cut == [True]
                with anyio.fail_after(60):
                    while True:
                        answer = await http.get(f"{live.base}/readyz")
                        seen.append((answer.status_code, answer.json()))
                        if seen[-1][0] == 200 and any(code == 503 for code, _ in seen):
                            break
                        await anyio.sleep(0.02)
    assert first.status_code == 200 and first.json()["status"] == "ready"
    if world.engine.dialect.name == "postgresql":
        assert (503, {"status": "unavailable", "reasons": ["not listening for commits"]}) in seen
        assert seen[-1][1]["status"] == "ready"


async def test_readyz_and_the_mcp_endpoint_refuse_while_draining(sqlite_world):
    gateway = sqlite_world.gateway()
    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=gateway)
    with LiveServer(app) as live:
        async with httpx2.AsyncClient() as http:
            gateway.calls.draining = True
            ready = await http.get(f"{live.base}/readyz")
            alive = await http.get(f"{live.base}/healthz")
            refused = await http.post(live.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert ready.status_code == 503 and ready.json()["reasons"] == ["shutting down"]
    assert alive.status_code == 200
    # Refused before the token is even looked at: nothing about the caller is needed to say "not here".
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert sqlite_world.audit_rows(kind="authentication") == []
