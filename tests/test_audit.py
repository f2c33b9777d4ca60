"""The audit log: rows written before the effect, hash-chained, tampering found."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import delete, insert, select, text, update

from mcp_acl.audit import GENESIS_HASH, AuditError, AuditLog, args_digest
from mcp_acl.audit.chain import row_hash
from mcp_acl.policy import Decision, Identity
from mcp_acl.store.tables import audit_events as ev
from mcp_acl.store.tables import audit_head

ALICE = Identity("alice", "mcp-acl-cli", issuer="http://127.0.0.1:8000")
ALLOW = Decision(True, "tool:files.read is allowed to user alice by grant #1", None, 7)
DENY = Decision(False, "no grant allows user alice to use tool:files.write", None, 7)


def decide_one(log: AuditLog, n: int = 0, session: str | None = "s1") -> int:
    return log.record_decision(
        session_id=session, identity=ALICE, action="call", target="tool:files.read",
        args={"path": f"reports/{n}.md"}, decision=ALLOW if n % 2 == 0 else DENY, latency_ms=0.25 + n,
    )


@pytest.fixture
def log(engine) -> AuditLog:
    return AuditLog(engine)


@pytest.fixture
def filled(log) -> AuditLog:
    for n in range(5):
        decide_one(log, n)
    return log


def raw(engine, row_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(ev).where(ev.c.id == row_id)).first()._mapping)


def test_an_intact_chain_verifies_with_its_count(filled):
    result = filled.verify()
    assert (result.ok, result.count, result.first_bad_id, result.problem) == (True, 5, None, None)
    assert result.head_hash == filled.tail(1)[0]["hash"]


def test_an_empty_log_verifies(log):
    assert log.verify().as_dict() == {"ok": True, "count": 0, "first_bad_id": None, "problem": None, "detail": None, "head_hash": None, "anchored_id": None}


def test_the_first_row_starts_from_genesis_and_each_names_the_previous(filled):
    rows = filled.tail(5)
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]


def test_a_decision_row_holds_who_what_why_and_a_digest_never_the_arguments(log):
    secret = {"path": "hr/salaries.csv", "content": "password=hunter2"}
    row_id = log.record_decision(session_id="s9", identity=ALICE, action="call", target="tool:files.write",
                                 args=secret, decision=DENY, latency_ms=1.23456)
    row = log.row(row_id)
    assert {k: row[k] for k in ("kind", "session_id", "issuer", "subject", "client_id", "action", "target", "decision", "reason", "revision", "latency_ms")} == {
        "kind": "decision", "session_id": "s9", "issuer": "http://127.0.0.1:8000", "subject": "alice",
        "client_id": "mcp-acl-cli", "action": "call", "target": "tool:files.write", "decision": "deny",
        "reason": DENY.reason, "revision": 7, "latency_ms": 1.235,
    }
    assert row["args_digest"] == args_digest(secret)
    assert "hunter2" not in json.dumps(row)


def test_a_token_in_a_reason_is_never_stored(log):
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    log.record_authentication(reason=f"token {token} has expired", issuer="https://idp", subject="alice")
    (row,) = log.tail(1)
    assert (row["kind"], row["decision"], row["reason"]) == ("authentication", "deny", "token [token removed] has expired")
    assert token not in json.dumps(row)


def test_an_outcome_points_at_its_decision_and_names_the_same_call(log):
    decision_id = decide_one(log)
    log.record_outcome(decision_id, "ok")
    (row,) = log.tail(1)
    assert (row["kind"], row["ref_id"], row["outcome"], row["subject"], row["target"], row["session_id"]) == (
        "outcome", decision_id, "ok", "alice", "tool:files.read", "s1",
    )


def test_an_outcome_for_a_row_that_is_no_decision_is_refused(log):
    with pytest.raises(AuditError, match="audit row 99 is not a decision"):
        log.record_outcome(99, "ok")
    with pytest.raises(AuditError, match="outcome must be one of ok, error"):
        log.record_outcome(decide_one(log), "maybe")


def test_outcomes_appended_as_one_batch_keep_the_chain(log):
    ids = [decide_one(log, 2 * n) for n in range(3)]
    log.record_outcomes([(ids[0], "ok", "s1"), (ids[1], "error", None), (ids[2], "ok", "s2")])
    rows = log.tail(3)
    assert [(r["kind"], r["ref_id"], r["outcome"], r["session_id"]) for r in rows] == [
        ("outcome", ids[0], "ok", "s1"), ("outcome", ids[1], "error", "s1"), ("outcome", ids[2], "ok", "s2"),
    ]
    assert log.verify().ok and log.verify().count == 6


def test_a_batch_with_a_bad_outcome_writes_nothing(log):
    decision_id = decide_one(log)
    with pytest.raises(AuditError):
        log.record_outcomes([(decision_id, "ok", None), (decision_id, "maybe", None)])
    with pytest.raises(AuditError):
        log.record_outcomes([(decision_id, "ok", None), (12345, "ok", None)])
    assert log.last_id() == decision_id


def test_an_edited_row_is_found(filled, engine):
    with engine.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 3).values(decision="deny"))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem, result.count) == (False, 3, "edited", 2)


def test_an_edited_row_given_a_new_hash_is_found(filled, engine):
    row = raw(engine, 3) | {"reason": "nothing to see"}
    row["hash"] = row_hash(row | {"at": filled.row(3)["at"]})
    with engine.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 3).values(reason=row["reason"], hash=row["hash"]))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 3, "edited")


def test_a_deleted_row_is_found(filled, engine):
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id == 3))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem, result.detail) == (False, 4, "deleted", "row 3 is missing before row 4")


def test_a_deleted_first_row_is_found(filled, engine):
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id == 1))
    assert (filled.verify().first_bad_id, filled.verify().problem) == (2, "deleted")


def test_swapped_rows_are_found_as_reordered(filled, engine):
    two, four = raw(engine, 2), raw(engine, 4)
    with engine.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 2).values(**{k: v for k, v in four.items() if k != "id"}))
        conn.execute(update(ev).where(ev.c.id == 4).values(**{k: v for k, v in two.items() if k != "id"}))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 2, "reordered")
    assert result.detail == "rows 2 and 4 hold each other's contents: they were swapped"


def test_an_inserted_copy_of_a_row_is_found(filled, engine):
    with engine.begin() as conn:
        conn.execute(insert(ev).values(**(raw(engine, 2) | {"id": 6})))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem, result.detail) == (False, 6, "inserted", "row 6 is a copy of row 2: a row was inserted")


def test_a_row_inserted_in_the_middle_is_found(filled, engine):
    # Make room at id 3 by renumbering, then add a forged row that links to row 2.
    with engine.begin() as conn:
        for row_id in (5, 4, 3):
            conn.execute(update(ev).where(ev.c.id == row_id).values(id=row_id + 1))
        forged = raw(engine, 2) | {"id": 3, "reason": "forged", "prev_hash": raw(engine, 2)["hash"]}
        forged["hash"] = row_hash(forged | {"at": filled.row(2)["at"]})
        conn.execute(insert(ev).values(**forged))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 4, "inserted")


def test_a_forged_row_appended_without_linking_is_found(filled, engine):
    forged = raw(engine, 5) | {"id": 6, "reason": "forged", "prev_hash": "f" * 64}
    forged["hash"] = row_hash(forged | {"at": filled.row(5)["at"]})
    with engine.begin() as conn:
        conn.execute(insert(ev).values(**forged))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 6, "inserted")


def test_appends_from_many_threads_keep_the_chain_valid(log):
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for n in range(15):
                decide_one(log, n, session=f"t{k}")
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    verdicts = []

    def check_while_appending() -> None:
        # Rows appended during a walk are neither missing nor past the head.
        while True:  # at least once, then until the appenders are done
            verdicts.append(log.verify())
            if not any(th.is_alive() for th in threads):
                return

    checker = threading.Thread(target=check_while_appending)
    for th in threads:
        th.start()
    checker.start()
    for th in threads:
        th.join()
    checker.join()
    assert errors == []
    assert [v for v in verdicts if not v.ok] == []
    result = log.verify()
    assert (result.ok, result.count) == (True, 90)
    assert log.head() == (90, result.head_hash)


APPENDER = """
import sys
from mcp_acl.audit import AuditLog
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import make_engine
log = AuditLog(make_engine(sys.argv[1]))
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
for n in range(40):
    log.record_decision(session_id=sys.argv[2], identity=Identity("bob"), action="call", target="tool:x",
                        args={"n": n}, decision=Decision(False, "no"), latency_ms=0.1)
"""


def test_appends_from_two_processes_keep_the_chain_valid(log, database_url, subprocess_env):
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, database_url, f"p{k}"], env=subprocess_env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline() == "ready\n"
        for proc in procs:  # released together, so their appends interleave
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            proc.stdin.close()
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            if not proc.stdin.closed:
                proc.stdin.close()
    result = log.verify()
    assert (result.ok, result.count) == (True, 80)


def test_a_database_that_refuses_the_write_raises_audit_error(log, engine):
    decide_one(log)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit is read-only'); END"))
        else:
            conn.execute(text("CREATE FUNCTION audit_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit is read-only'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_refuse()"))
    with pytest.raises(AuditError, match="the audit row could not be written: .*audit is read-only"):
        decide_one(log, 1)
    with pytest.raises(AuditError):
        log.record_authentication(reason="expired")
    assert log.last_id() == 1


def test_arguments_that_cannot_be_digested_raise_audit_error(log):
    with pytest.raises(AuditError, match="could not be made"):
        log.record_decision(session_id=None, identity=ALICE, action="call", target="tool:x",
                            args={"n": float("nan")}, decision=ALLOW, latency_ms=1)
    assert log.last_id() == 0


def test_tail_iter_rows_and_export_read_in_order(filled):
    assert [r["id"] for r in filled.tail(2)] == [4, 5]
    assert [r["id"] for r in filled.iter_rows(after_id=3)] == [4, 5]
    out = io.StringIO()
    assert filled.export_jsonl(out) == 5
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["at"].endswith("+00:00")
    assert lines == list(filled.iter_rows())


def test_follow_yields_rows_appended_later(filled):
    seen = []
    follower = filled.follow(after_id=5, poll_seconds=0.01)
    writer = threading.Thread(target=lambda: [decide_one(filled, n) for n in range(3)])
    writer.start()
    for row in follower:
        seen.append(row["id"])
        if len(seen) == 3:
            break
    writer.join()
    assert seen == [6, 7, 8]


# -- the head record: the chain's end, moved with every append (migration 0004)


def head_row(engine) -> tuple[int, str] | None:
    return AuditLog(engine).head()


def test_the_head_record_names_the_newest_row(filled, engine):
    newest = filled.tail(1)[0]
    assert head_row(engine) == (newest["id"], newest["hash"])


def test_deleting_the_newest_row_is_found_by_the_head_record(filled, engine):
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id == 5))
    result = filled.verify()
    assert (result.ok, result.count, result.first_bad_id, result.problem) == (False, 4, 5, "deleted")
    assert result.detail == "row 5 is missing at the end: the head record names row 5"


def test_deleting_the_newest_rows_names_them_all(filled, engine):
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id >= 3))
    assert filled.verify().detail == "rows 3 to 5 are missing at the end: the head record names row 5"


def test_the_next_append_after_deleting_the_newest_row_does_not_reuse_its_id(filled, engine):
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id == 5))
    assert decide_one(filled, 5) == 6
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem, result.detail) == (False, 6, "deleted", "row 5 is missing before row 6")


def test_a_deleted_head_record_is_found_and_refuses_appends(filled, engine):
    with engine.begin() as conn:
        conn.execute(delete(audit_head))
    result = filled.verify()
    assert (result.ok, result.problem) == (False, "deleted")
    assert result.detail.startswith("the head record (table audit_head) is missing")
    # Without the head, no id can be handed out safely: the call is refused.
    with pytest.raises(AuditError, match="the audit head record is missing"):
        decide_one(filled, 5)
    assert filled.last_id() == 5


def test_a_head_record_with_another_hash_is_found(filled, engine):
    with engine.begin() as conn:
        conn.execute(update(audit_head).values(last_hash="e" * 64))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 5, "edited")


def test_rows_added_past_the_head_record_are_found(filled, engine):
    # A forged row that links correctly, written straight into the table.
    forged = raw(engine, 5) | {"id": 6, "reason": "forged", "prev_hash": raw(engine, 5)["hash"]}
    forged["hash"] = row_hash(forged | {"at": filled.row(5)["at"]})
    with engine.begin() as conn:
        conn.execute(insert(ev).values(**forged))
    result = filled.verify()
    assert (result.ok, result.first_bad_id, result.problem) == (False, 6, "inserted")
    assert result.detail == "row 6 is past the head record (row 5): not appended by mcp-acl"


def test_a_batch_moves_the_head_to_its_last_row(log, engine):
    ids = [decide_one(log, 2 * n) for n in range(3)]
    log.record_outcomes([(i, "ok", None) for i in ids])
    assert head_row(engine) == (6, log.tail(1)[0]["hash"])
    assert log.verify().ok


def test_a_failed_append_leaves_the_head_where_it_was(filled, engine):
    before = head_row(engine)
    with pytest.raises(AuditError):
        filled.record_outcomes([(1, "ok", None), (12345, "ok", None)])
    assert head_row(engine) == before
    assert decide_one(filled, 5) == 6
