"""Outcome rows written after the answer, and none lost at shutdown."""

from __future__ import annotations

import anyio

from mcp_acl.audit import AuditLog
from mcp_acl.gateway.outcomes import OutcomeWriter
from mcp_acl.policy import Decision, Identity

from .harness import make_world


async def test_queued_outcomes_are_written_even_when_the_writer_is_stopped(sqlite_url, tmp_path):
    world = make_world(sqlite_url, tmp_path / "home")
    audit = AuditLog(world.engine)
    ids = [
        audit.record_decision(
            session_id=None, identity=Identity("alice"), action="tools/call", target="tool:files.list",
            args={}, decision=Decision(True, "allowed"), latency_ms=0.1,
        )
        for _ in range(5)
    ]
    writer = OutcomeWriter(audit)
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        for decision_id in ids:
            await writer.record(decision_id, "ok", None)
        tg.cancel_scope.cancel()
    assert [(r.ref_id, r.outcome) for r in world.audit_rows(kind="outcome")] == [(i, "ok") for i in ids]
    assert audit.verify().ok
    world.engine.dispose()


async def test_without_a_running_writer_the_outcome_is_written_at_once(sqlite_url, tmp_path):
    world = make_world(sqlite_url, tmp_path / "home")
    audit = AuditLog(world.engine)
    decision_id = audit.record_decision(
        session_id=None, identity=Identity("bob"), action="tools/call", target="tool:files.list",
        args={}, decision=Decision(True, "allowed"), latency_ms=0.1,
    )
    await OutcomeWriter(audit).record(decision_id, "error", "s1")
    [row] = world.audit_rows(kind="outcome")
    assert (row.ref_id, row.outcome, row.session_id) == (decision_id, "error", "s1")
    world.engine.dispose()
