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


async def test_summaries_taken_from_ended_windows_are_written_even_if_the_writer_is_stopped_between_two(engine):
    import anyio
    import anyio.from_thread

    from mcp_acl.audit import AuditLog
    from mcp_acl.gateway.refusals import RefusalLog

    audit = AuditLog(engine)
    now = [0.0]
    stop = []

    class StoppedOnFirstSummary:
        """The real audit log; the writer's task is cancelled as the first summary row is written."""

        def record_authentication(self, **row):
            if " more refused " in row["reason"] and stop:
                anyio.from_thread.run_sync(stop.pop().cancel)
            audit.record_authentication(**row)

    refusals = RefusalLog(StoppedOnFirstSummary(), clock=lambda: now[0])
    for source in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        for _ in range(2):  # the first written at once, the second counted
            refusals.on_refused("bad token", {"remote_addr": source})
    now[0] = 100.0  # every window has ended: three summaries are due
    async with anyio.create_task_group() as tg:
        stop.append(tg.cancel_scope)
        await tg.start(refusals.run)
    rows = audit.tail(100)
    assert sum(summarised_count(r["reason"]) for r in rows if r["kind"] == "authentication") == 6


def test_a_forged_token_whose_names_cannot_be_stored_is_still_audited(engine):
    # A lone surrogate (any database) or a NUL byte (PostgreSQL) in the claimed sub
    # made every row of the flood unwritable: the refusals vanished from the log.
    from mcp_acl.audit import AuditLog
    from mcp_acl.gateway.refusals import RefusalLog

    audit = AuditLog(engine)
    refusals = RefusalLog(audit)
    for n, sub in enumerate(["mallory\ud800", "mallory\x00"]):
        refusals.on_refused("bad token", {"remote_addr": f"10.0.0.{n}", "sub": sub, "iss": "x\x00", "client_id": "c\udfff"})
    rows = [r for r in audit.tail(10) if r["kind"] == "authentication"]
    assert [(r["subject"], r["issuer"], r["client_id"]) for r in rows] == [
        ("mallory\\ud800", "x\\x00", "c\\udfff"), ("mallory\\x00", "x\\x00", "c\\udfff"),
    ]


def test_a_refused_token_with_a_good_signature_is_not_folded_into_a_flood_of_forged_ones(engine):
    # An expired (or out-of-scope) token of a real user, from an address that is
    # also sending garbage: its row is written at once, under its own count.
    from mcp_acl.audit import AuditLog
    from mcp_acl.gateway.refusals import RefusalLog

    audit = AuditLog(engine)
    refusals = RefusalLog(audit, clock=lambda: 0.0)
    for _ in range(3):
        refusals.on_refused("the token's signature is invalid", {"remote_addr": "10.0.0.7", "sub": "forged"})
    refusals.on_refused("the token has expired", {"remote_addr": "10.0.0.7", "sub": "alice", "signed": True})
    rows = [(r["reason"], r["subject"]) for r in audit.tail(10) if r["kind"] == "authentication"]
    assert rows == [
        ("the token's signature is invalid (from 10.0.0.7)", "forged"),
        ("the token has expired (from 10.0.0.7)", "alice"),
    ]
