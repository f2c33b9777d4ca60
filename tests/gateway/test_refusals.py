"""Refused tokens reach the audit log through a queue, none lost at shutdown."""

from __future__ import annotations

import httpx2

from .harness import serve


async def test_refused_tokens_are_audited_off_the_event_loop_and_none_lost_at_shutdown(sqlite_world):
    world = sqlite_world
    with serve(world) as live:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer not.a.token"}) as http:
            answers = [await http.post(live.mcp_url, json={"jsonrpc": "2.0", "id": n, "method": "tools/list"}) for n in range(20)]
    assert {a.status_code for a in answers} == {401}
    assert len(world.audit_rows(kind="authentication")) == 20
    assert world.audit_rows(kind="decision") == []
