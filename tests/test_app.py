"""The HTTP application as a whole: routes, the auth wrapper in front of /mcp, its audit hook."""

from __future__ import annotations

import httpx2
from sqlalchemy import text

from gateway.harness import connect, make_world, serve


def _world(tmp_path):
    return make_world(f"sqlite:///{tmp_path / 'mcp-acl.db'}", tmp_path / "home")


async def test_healthz_says_alive_and_readyz_says_whether_the_database_answers(tmp_path):
    world = _world(tmp_path)
    with serve(world) as live:
        async with httpx2.AsyncClient() as http:
            ready = await http.get(f"{live.base}/readyz")
            with world.engine.begin() as conn:
                conn.execute(text("DROP TABLE policy_revision"))
            alive = await http.get(f"{live.base}/healthz")
            down = await http.get(f"{live.base}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["revision"] > 0
    # Liveness does no I/O: a database outage must not get the process restarted.
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    assert down.status_code == 503 and down.json()["status"] == "unavailable"
    assert down.json()["reasons"] == ["database unreachable (OperationalError)"]


async def test_discovery_documents_are_served(tmp_path):
    world = _world(tmp_path)
    with serve(world) as live:
        async with httpx2.AsyncClient() as http:
            metadata = await http.get(f"{live.base}/.well-known/oauth-protected-resource/mcp")
            jwks = await http.get(f"{live.base}/jwks.json")
    assert metadata.json()["resource"] == world.settings.resource_url
    assert metadata.json()["authorization_servers"] == [world.settings.embedded_issuer_url]
    assert [k["kty"] for k in jwks.json()["keys"]] == ["RSA"]


async def test_request_without_a_token_gets_401_and_an_audit_row(tmp_path):
    world = _world(tmp_path)
    with serve(world) as live:
        async with httpx2.AsyncClient() as http:
            refused = await http.post(
                live.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream"},
            )
    assert refused.status_code == 401
    assert "resource_metadata=" in refused.headers["www-authenticate"]
    [row] = world.audit_rows(kind="authentication")
    assert row.reason.startswith("no access token")
    assert world.audit_rows(kind="decision") == []


async def test_token_for_another_resource_is_refused_and_audited_with_its_claimed_names(tmp_path):
    world = _world(tmp_path)
    from datetime import timedelta

    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.tokens import mint_access_token

    foreign = mint_access_token(
        SigningKeys(world.engine), issuer=world.settings.embedded_issuer_url, audience="http://elsewhere.test/mcp",
        subject="alice", client_id="mcp-acl-cli", scopes=["mcp"], ttl=timedelta(minutes=5),
    )
    with serve(world) as live:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {foreign}"}) as http:
            refused = await http.post(live.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401
    [row] = world.audit_rows(kind="authentication")
    assert (row.subject, row.client_id) == ("alice", "mcp-acl-cli")
    assert "aud" in row.reason


async def test_both_protocol_eras_are_served_on_one_endpoint(tmp_path):
    world = _world(tmp_path)
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("bob"), mode="legacy") as legacy:
            legacy_version = legacy.protocol_version
        async with connect(live.mcp_url, world.token("bob"), mode="auto") as modern:
            modern_version = modern.protocol_version
    assert (legacy_version, modern_version) == ("2025-11-25", "2026-07-28")
