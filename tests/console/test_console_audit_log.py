"""The console's audit log on a real database (SQLite and PostgreSQL): filters, export, the overview's chain check."""

from __future__ import annotations

import pytest

from mcp_acl.audit import AuditLog
from mcp_acl.console import queries as q
from mcp_acl.policy import Decision, Identity

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
