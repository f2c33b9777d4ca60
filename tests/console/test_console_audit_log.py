"""The console's audit log on a real database (SQLite and PostgreSQL): filters, export, the overview's chain check."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from typer.testing import CliRunner

from mcp_acl.audit import AuditLog
from mcp_acl.audit.appender import Appender
from mcp_acl.audit.chain import row_hash
from mcp_acl.audit.checks import last_full, look, record_full
from mcp_acl.cli import app as cli
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


# --- the overview's chain check ---------------------------------------------

ev, head_table = t.audit_events, t.audit_head
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)


def verified_in_full(engine, rows: int = 30) -> None:
    many_rows(engine, rows)
    record_full(engine, AuditLog(engine).verify(), "test", NOW)


def test_the_overview_checks_only_the_rows_added_since_the_last_checked_point(engine):
    many_rows(engine, 30)
    state = look(engine, NOW)
    assert (state.ok, state.full, state.since, state.head[0]) == (None, None, None, 30)  # never verified: says so, reads nothing
    record_full(engine, AuditLog(engine).verify(), "test", NOW)
    state = look(engine, NOW)
    assert state.ok and state.full.checked_id == 30 and state.since.count == 30
    many_rows(engine, 5)
    state = look(engine, NOW)
    assert state.ok and (state.full.checked_id, state.since.count) == (30, 35)
    assert last_full(engine).checked_id == 35  # the next look starts after row 35
    # A row before the point is not read again by the overview (that is the full verification's work) ...
    with engine.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 3).values(reason="rewritten"))
    assert look(engine, NOW).ok
    # ... which finds it, and is then what the overview shows until a full verification finds the chain intact.
    broken = AuditLog(engine).verify()
    assert (broken.ok, broken.first_bad_id, broken.problem) == (False, 3, "edited")
    record_full(engine, broken, "test", NOW)
    state = look(engine, NOW)
    assert state.ok is False and state.since is None and state.broken.first_bad_id == 3


def _delete_newest(engine, n):
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id > conn.execute(select(func.max(ev.c.id))).scalar() - n))


def _delete_head(engine):
    with engine.begin() as conn:
        conn.execute(delete(head_table))


def _edit(engine, row_id, rehash=False):
    with engine.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == row_id).values(reason="rewritten"))
        if rehash:
            row = AuditLog(engine).row(row_id)
            conn.execute(update(ev).where(ev.c.id == row_id).values(hash=row_hash(row | {"reason": "rewritten"})))


def _forge_past_head(engine):
    row = AuditLog(engine).tail(1)[0]
    forged = {**row, "id": row["id"] + 1, "prev_hash": row["hash"], "reason": "forged"}
    forged["hash"] = row_hash(forged)
    with engine.begin() as conn:
        conn.execute(insert(ev).values({**forged, "at": datetime.fromisoformat(forged["at"])}))


@pytest.mark.parametrize("tamper, first_bad, problem", [
    (lambda e: _delete_newest(e, 2), 34, "deleted"),        # rows deleted from the end, after the point
    (lambda e: _delete_newest(e, 10), 30, "deleted"),       # ... and down past the point: its row is gone
    (_delete_head, None, "deleted"),                         # the head record is missing
    (lambda e: _edit(e, 33), 33, "edited"),                  # a changed row after the point
    (lambda e: _edit(e, 33, rehash=True), 33, "edited"),     # ... given a new hash (row 34 names the old one)
    (lambda e: _edit(e, 31, rehash=True), 31, "edited"),     # the first row after the point, re-hashed
    (lambda e: _edit(e, 30, rehash=True), 30, "edited"),     # the point's own row, re-hashed
    (_forge_past_head, 36, "inserted"),                      # a row past the head record
], ids=["end", "past-point", "head", "edited", "rehashed", "after-point", "point", "past-head"])
def test_the_overview_finds_what_changed_since_the_point(engine, tamper, first_bad, problem):
    verified_in_full(engine, 30)
    many_rows(engine, 5)
    tamper(engine)
    state = look(engine, NOW)
    assert state.ok is False and (state.broken.first_bad_id, state.broken.problem) == (first_bad, problem), state.broken
    assert last_full(engine).checked_id == 30  # a broken look moves nothing
    assert not AuditLog(engine).verify().ok  # the full verification agrees


def test_audit_verify_and_anchor_record_the_last_full_verification(database_url, tmp_path):
    from mcp_acl.store import make_engine, upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        many_rows(engine, 3)
        run = CliRunner().invoke(cli, ["audit", "verify", "--database", database_url])
        assert run.exit_code == 0, run.output
        full = last_full(engine)
        assert (full.by, full.result.ok, full.checked_id) == ("mcp-acl audit verify", True, 3)
        many_rows(engine, 2)
        run = CliRunner().invoke(cli, ["audit", "anchor", str(tmp_path / "a.jws"), "--key", str(tmp_path / "k.jwk"), "--database", database_url])
        assert run.exit_code == 0, run.output
        assert (last_full(engine).by, last_full(engine).checked_id) == ("mcp-acl audit anchor", 5)
    finally:
        engine.dispose()


async def test_the_overview_shows_the_last_full_verification_and_what_it_checked_since(sqlite_url):
    require_browser()
    async with served_demo(sqlite_url) as served, browser() as chrome:
        engine = served.world.engine
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin")
        assert await page.inner_text("#chain-card .big") == "not verified"
        assert "none recorded yet" in await page.inner_text("#chain-full")
        await page.click("#chain-full a")  # verify now: the full walk
        assert (await page.inner_text("#verdict")).startswith("Intact")
        with engine.connect() as conn:
            verified = conn.execute(select(func.max(ev.c.id))).scalar()
        many_rows(engine, 3)
        await page.goto(served.base + "/admin/")
        assert await page.inner_text("#chain-card .big") == "intact"
        assert f"by admin (console): intact, rows 1 to {verified}" in await page.inner_text("#chain-full")
        since = await page.inner_text("#chain-since")
        assert f"added since row {verified} was checked" in since and "reaches the head record" in since
        # That visit moved the point to the end: the next one checks only rows added after it ...
        await page.goto(served.base + "/admin/")
        assert f"no rows added since row {verified + 3} was checked" in await page.inner_text("#chain-since")
        # ... and finds one of them changed.
        many_rows(engine, 3)
        _edit(engine, verified + 5)
        await page.goto(served.base + "/admin/")
        assert await page.inner_text("#chain-card .big") == "BROKEN"
        assert f"broken at row {verified + 5} (edited)" in await page.inner_text("#chain-since")
