"""Refused tokens reach the audit log off the event loop, counted per source, none lost at shutdown."""

from __future__ import annotations

import httpx2

from mcp_acl.audit.refusal_windows import summarised_count

from .harness import serve


async def test_a_flood_of_bad_tokens_is_summarised_per_source_and_every_refusal_counted(sqlite_world):
    world = sqlite_world
    with serve(world) as live:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer not.a.token"}) as http:
            answers = [await http.post(live.mcp_url, json={"jsonrpc": "2.0", "id": n, "method": "tools/list"}) for n in range(50)]
    assert {a.status_code for a in answers} == {401}
    rows = world.audit_rows(kind="authentication")
    assert len(rows) < 50
    assert sum(summarised_count(r.reason) for r in rows) == 50
    assert rows[0].reason.endswith("(from 127.0.0.1)")
    assert world.audit_rows(kind="decision") == []
