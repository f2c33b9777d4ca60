"""The console's audit log on a real database (SQLite and PostgreSQL): filters, export, the overview's chain check."""

from __future__ import annotations

import io
import json
import tracemalloc

import httpx
import pytest
from sqlalchemy import func, select, text

from mcp_acl.audit import AuditLog
from mcp_acl.audit.appender import Appender
from mcp_acl.console import queries as q
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import tables as t
from tests.console.support import browser, require_browser, served_demo, sign_in

DENY = Decision(False, "no grant allows it", None, 1)


def record(log: AuditLog, subject: str, target: str = "tool:files.read", client: str = "mcp-acl-cli") -> int:
    return log.record_decision(
        session_id=None, identity=Identity(subject, client, issuer="http://127.0.0.1:8000"), action="call",
        target=target, args=None, decision=DENY, latency_ms=0.1,
    )


def callers(engine, **wanted) -> list[tuple[str, str]]:
    return sorted((r["subject"], r["target"]) for r in q.audit_rows(engine, q.AuditFilter(**wanted)))


@pytest.mark.parametrize("typed, found", [
    ("a_b", ["a_b"]),            # `_` is an underscore, not any one character (axb)
    ("50%", ["50%off"]),         # `%` is a percent sign, not anything (500ff)
    ("%", ["50%off"]),
    ("_", ["a_b"]),
    ("x/y", ["x/y"]),            # the escape character itself is literal too
    ("b", ["a_b", "axb"]),       # still a substring match
])
def test_a_caller_filter_matches_percent_and_underscore_literally(engine, typed, found):
    log = AuditLog(engine)
    for subject in ("a_b", "axb", "50%off", "500ff", "x/y", "xzy"):
        record(log, subject, client="c")
    assert [s for s, _ in callers(engine, caller=typed)] == found


def test_a_target_filter_matches_percent_and_underscore_literally(engine):
    log = AuditLog(engine)
    for target in ("tool:files_read", "tool:files.read", "resource:db://q?x=100%", "resource:db://q?x=1000"):
        record(log, "alice", target)
    assert [t for _, t in callers(engine, target="files_read")] == ["tool:files_read"]
    assert [t for _, t in callers(engine, target="100%")] == ["resource:db://q?x=100%"]
    assert [t for _, t in callers(engine, target="files")] == ["tool:files.read", "tool:files_read"]


def many_rows(engine, n: int, subject: str = "alice") -> None:
    """`n` decision rows in one append (one transaction), each with a reason of some length."""
    Appender(engine).append([
        {"kind": "decision", "subject": subject, "client_id": "mcp-acl-cli", "action": "call", "target": f"tool:t{i % 7}",
         "decision": "deny" if i % 3 else "allow", "reason": f"row {i}: " + "why " * 40, "revision": 1}
        for i in range(n)
    ])


def test_the_export_is_what_audit_export_writes_across_batches(engine):
    log = AuditLog(engine)
    many_rows(engine, 40)
    record(log, "bob", "tool:files_read")
    everything = io.StringIO()
    log.export_jsonl(everything)
    assert "".join(q.export_lines(engine, q.AuditFilter(), batch=7)) == everything.getvalue()
    # Filtered, it holds what the audit page shows, oldest first.
    wanted = q.AuditFilter(target="t3", result="deny")
    exported = [json.loads(line) for line in q.export_lines(engine, wanted, batch=2)]
    assert exported == list(reversed(q.audit_rows(engine, wanted, None))) and len(exported) == 4


def test_the_export_ends_at_the_rows_there_were_when_it_began(engine):
    log = AuditLog(engine)
    many_rows(engine, 5)
    lines = q.export_lines(engine, q.AuditFilter(), batch=2)
    first = next(lines)
    record(log, "late")
    rest = list(lines)
    assert [json.loads(line)["id"] for line in [first, *rest]] == [1, 2, 3, 4, 5]


def test_the_export_takes_a_batch_of_memory_not_the_whole_log(engine):
    many_rows(engine, 10_000)
    tracemalloc.start()
    try:
        size = sum(len(line) for line in q.export_lines(engine, q.AuditFilter()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Built in memory, the export alone (let alone its rows) would be `size`.
    assert size > 5_000_000 and peak < size / 3, (size, peak)


async def test_an_export_that_fails_part_way_ends_as_a_failure_not_as_a_shorter_file(sqlite_url):
    require_browser()
    async with served_demo(sqlite_url) as served, browser() as chrome:
        engine = served.world.engine
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin", goto="/admin/audit")
        many_rows(engine, q.EXPORT_BATCH + 100)
        with engine.begin() as conn:  # a row the database can no longer read, past the first batch
            last = conn.execute(select(func.max(t.audit_events.c.id))).scalar()
            conn.execute(text("UPDATE audit_events SET at = 'not a time' WHERE id = :id"), {"id": last - 10})
        cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
        received: list[str] = []
        async with httpx.AsyncClient(base_url=served.base, cookies=cookies) as http:
            async with http.stream("GET", "/admin/audit/export") as answer:
                assert answer.status_code == 200
                assert answer.headers["content-disposition"] == 'attachment; filename="mcp-acl-audit.jsonl"'
                with pytest.raises(httpx.RemoteProtocolError):  # the body never ends: the transfer failed
                    async for line in answer.aiter_lines():
                        received.append(line)
        # The first batch came, then a line saying the export stopped, and nothing after it.
        assert [json.loads(line)["id"] for line in received[:-1]] == list(range(1, q.EXPORT_BATCH + 1))
        assert json.loads(received[-1])["error"].startswith("the export stopped before its end: ValueError")
        # The browser marks the download failed rather than saving a shorter file as done.
        async with page.expect_download() as download:
            await page.evaluate("location.href = '/admin/audit/export'")
        assert await (await download.value).failure() is not None
