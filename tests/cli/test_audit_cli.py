"""`mcp-acl audit tail|verify|export`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from mcp_acl.audit import AuditLog
from mcp_acl.cli import app
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.tables import audit_events as ev
from mcp_acl.store.tables import audit_head

runner = CliRunner()


def append(log: AuditLog, n: int) -> int:
    return log.record_decision(
        session_id="s1", identity=Identity("alice", "mcp-acl-cli"), action="call", target="tool:files.read",
        args={"n": n}, decision=Decision(n % 2 == 0, f"reason {n}", None, 3), latency_ms=0.5,
    )


@pytest.fixture
def db(sqlite_url):
    eng = make_engine(sqlite_url)
    upgrade(eng)
    log = AuditLog(eng)
    first = append(log, 0)
    log.record_outcome(first, "ok")
    log.record_authentication(reason="token expired", subject="bob")
    yield sqlite_url, eng, log
    eng.dispose()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_verify_says_intact_with_the_count(db):
    url, _, log = db
    result = run("audit", "verify", "--database", url)
    assert result.exit_code == 0
    assert result.stdout == f"audit log intact: 3 rows (head {log.tail(1)[0]['hash']})\n"


def test_verify_exits_1_naming_the_first_bad_row(db):
    url, eng, _ = db
    with eng.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 2).values(outcome="error"))
    result = run("audit", "verify", "--database", url)
    assert result.exit_code == 1
    assert "audit log broken at row 2 (edited): row 2 does not match its hash: it was edited" in result.stderr


def test_verify_json_carries_the_verdict(db):
    url, eng, _ = db
    with eng.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 3).values(reason="fine"))
    result = run("audit", "verify", "--json", "--database", url)
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert (body["ok"], body["count"], body["first_bad_id"], body["problem"]) == (False, 2, 3, "edited")


def test_tail_describes_the_newest_rows_oldest_first(db):
    url, _, _ = db
    result = run("audit", "tail", "-n", "2", "--database", url)
    assert result.exit_code == 0
    first, second = result.stdout.splitlines()
    assert first.startswith("#2 ") and first.endswith("outcome ok of #1 (alice via mcp-acl-cli tool:files.read)")
    assert second.startswith("#3 ") and second.endswith("authentication refused (bob): token expired")


def test_tail_describes_a_decision(db):
    url, _, _ = db
    (line,) = run("audit", "tail", "-n", "3", "--database", url).stdout.splitlines()[:1]
    assert line.startswith("#1 ")
    assert line.endswith("decision allow alice via mcp-acl-cli call tool:files.read (rev 3, 0.5 ms): reason 0")


def test_tail_json_prints_one_object_per_line(db):
    url, _, _ = db
    result = run("audit", "tail", "--json", "--database", url)
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [1, 2, 3]


def test_tail_follow_shows_rows_appended_while_it_runs(db):
    url, _, log = db
    writer = threading.Thread(target=lambda: [append(log, n) for n in (1, 2)])
    writer.start()
    result = run("audit", "tail", "-n", "10", "--follow", "--json", "--poll", "0.01", "--max-rows", "5", "--database", url)
    writer.join()
    assert result.exit_code == 0
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [1, 2, 3, 4, 5]


def test_export_writes_jsonl_to_a_file(db, tmp_path):
    url, _, log = db
    target = tmp_path / "audit.jsonl"
    result = run("audit", "export", "--format", "jsonl", str(target), "--database", url)
    assert result.exit_code == 0
    assert result.stderr == f"exported 3 rows to {target}\n"
    assert [json.loads(line) for line in target.read_text().splitlines()] == list(log.iter_rows())


def test_export_to_standard_output(db):
    url, _, _ = db
    result = run("audit", "export", "--database", url)
    assert [json.loads(line)["kind"] for line in result.stdout.splitlines()] == ["decision", "outcome", "authentication"]


def test_export_refuses_an_unknown_format(db):
    url, _, _ = db
    result = run("audit", "export", "--format", "csv", "--database", url)
    assert result.exit_code == 2
    assert "unknown format 'csv': only jsonl is supported" in result.stderr


def test_the_installed_command_exits_1_on_a_broken_chain(db, subprocess_env):
    url, eng, _ = db
    with eng.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 1).values(subject="mallory"))
    done = subprocess.run([sys.executable, "-m", "mcp_acl", "audit", "verify", "--database", url],
                          env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "audit log broken at row 1 (edited)" in done.stderr


# -- the head record and anchors


def test_verify_exits_1_when_the_newest_row_was_deleted(db):
    url, eng, _ = db
    with eng.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id == 3))
    result = run("audit", "verify", "--database", url)
    assert result.exit_code == 1
    assert "audit log broken at row 3 (deleted): row 3 is missing at the end: the head record names row 3" in result.stderr


def test_anchor_writes_a_checkpoint_that_verify_accepts(db, tmp_path):
    url, _, log = db
    anchor = tmp_path / "anchor.jws"
    made = run("audit", "anchor", str(anchor), "--database", url)
    assert made.exit_code == 0
    head = log.tail(1)[0]["hash"]
    assert made.stderr.splitlines() == [
        f"made a new anchor key at {tmp_path / 'home' / 'audit-anchor-key.jwk'}; keep it (and a copy) away from the database",
        f"anchored row 3 (head {head}) in {anchor}",
    ]
    result = run("audit", "verify", "--anchor", str(anchor), "--database", url)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"audit log intact: 3 rows (head {head}); it holds the anchor of ")
    assert result.stdout.endswith("(row 3)\n")


def test_anchor_prints_to_standard_output_with_a_key_from_the_environment(db, tmp_path, monkeypatch):
    url, _, _ = db
    monkeypatch.setenv("MCP_ACL_AUDIT_ANCHOR_KEY", str(tmp_path / "elsewhere.jwk"))
    made = run("audit", "anchor", "--database", url)
    assert made.exit_code == 0 and made.stdout.count(".") == 2
    (tmp_path / "a.jws").write_text(made.stdout)
    assert run("audit", "verify", "--anchor", str(tmp_path / "a.jws"), "--database", url).exit_code == 0
    assert (tmp_path / "elsewhere.jwk").exists()


def test_verify_with_an_anchor_finds_rows_deleted_with_the_head_rewritten_to_match(db, tmp_path):
    url, eng, log = db
    anchor = tmp_path / "anchor.jws"
    assert run("audit", "anchor", str(anchor), "--database", url).exit_code == 0
    first = log.row(1)["hash"]
    with eng.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id >= 2))
        conn.execute(update(audit_head).values(last_id=1, last_hash=first))
    assert run("audit", "verify", "--database", url).exit_code == 0  # the table alone cannot tell
    result = run("audit", "verify", "--anchor", str(anchor), "--json", "--database", url)
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert (body["problem"], body["first_bad_id"]) == ("deleted", 2)
    assert body["detail"].startswith("the chain ends at row 1 but the anchor of ")


def test_verify_refuses_a_tampered_anchor(db, tmp_path):
    url, _, _ = db
    anchor = tmp_path / "anchor.jws"
    assert run("audit", "anchor", str(anchor), "--database", url).exit_code == 0
    header, payload, signature = anchor.read_text().strip().split(".")
    anchor.write_text(f"{header}.{payload}.{signature[:-4]}AAAA\n")
    result = run("audit", "verify", "--anchor", str(anchor), "--database", url)
    assert result.exit_code == 1
    assert f"{anchor}: the anchor's signature does not verify with this key: it was altered, or signed with another key" in " ".join(result.stderr.split())


def test_verify_with_an_anchor_but_no_key_is_bad_input(db, tmp_path):
    url, _, _ = db
    anchor = tmp_path / "anchor.jws"
    assert run("audit", "anchor", str(anchor), "--database", url).exit_code == 0
    result = run("audit", "verify", "--anchor", str(anchor), "--key", str(tmp_path / "nope.jwk"), "--database", url)
    assert result.exit_code == 2
    assert "no anchor key at" in result.stderr


def test_anchor_refuses_a_broken_log(db, tmp_path):
    url, eng, _ = db
    with eng.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == 2).values(outcome="error"))
    result = run("audit", "anchor", str(tmp_path / "anchor.jws"), "--database", url)
    assert result.exit_code == 1
    assert "not anchoring a broken log: audit log broken at row 2 (edited)" in result.stderr
    assert not (tmp_path / "anchor.jws").exists()


def test_tail_shows_a_forged_subject_with_its_newline_escaped(db):
    url, _, log = db
    # A refused token's sub and client_id are unverified: anyone can put a whole fake row in them.
    forged = "x\n#99 2026-12-06 03:00:00Z decision allow alice via app call tool:files.write (rev 1, 0.1 ms): ok"
    log.record_authentication(reason="bad signature", subject=forged, client_id="c\x1b[2J")
    result = run("audit", "tail", "-n", "1", "--database", url)
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert line.endswith("authentication refused (x\\n#99 2026-12-06 03:00:00Z decision allow alice via app call "
                         "tool:files.write (rev 1, 0.1 ms): ok via c\\x1b[2J): bad signature")
