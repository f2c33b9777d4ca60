"""Replay decides every audited call as `mcp-acl check` does (Hypothesis, real SQLite, real audit rows).

For a random policy document and random calls: the document is imported
into the database, each call is decided as `check` decides it (resolve +
ask on the loader's policy) and recorded in the real audit log; then the
document's YAML, compiled as a candidate, re-decides each recorded row.
Every row replay decides gets check's answer (and, for a call without
arguments, the same deciding grant); a row is undecidable only when its
call had arguments; and replay of the policy that made the decisions
flips nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from mcp_acl.audit import AuditLog
from mcp_acl.audit.replay import redecide, replay
from mcp_acl.policy import Effect
from mcp_acl.store import PolicyAdmin, PolicyLoader
from mcp_acl.store import tables as t
from mcp_acl.store.candidate import load_candidate
from mcp_acl.store.portable import ClientEntry, GrantEntry, PolicyDocument, UserEntry, dump_document, import_document
from mcp_acl.store.questions import Question, ask, resolve

USERS = ("u0", "u1", "u2")
ROLES = ("r0", "r1")
CLIENTS = ("c0", "c1")
TARGETS = ("tool:a.x", "tool:a.y", "tool:b.z", "resource:file:///r/1", "prompt:p")
PATTERNS = TARGETS + ("tool:a.*", "tool:*", "resource:file:///r/*", "prompt:*")
CONDITIONS = (None, None, "args.size < 100", 'has(args.path) && args.path.startsWith("r/")', '"r0" in user.roles',
              "client.restricted", 'now > timestamp("2000-01-01T00:00:00Z")')
ARGS = ({}, {}, {"size": 5}, {"size": 500}, {"path": "r/1"}, {"path": "x"})
SOON = datetime.now(timezone.utc) + timedelta(days=30)
PAST = datetime(2001, 1, 1, tzinfo=timezone.utc)


def _principal(draw) -> str:
    kind = draw(st.sampled_from(("user", "role", "client")))
    return f"{kind}:" + draw(st.sampled_from({"user": USERS, "role": ROLES, "client": CLIENTS}[kind]))


@st.composite
def documents(draw) -> PolicyDocument:
    users = tuple(
        UserEntry(u, tuple(draw(st.lists(st.sampled_from(ROLES), unique=True, max_size=2))), draw(st.booleans()) and u == "u2")
        for u in USERS
    )
    clients = tuple(ClientEntry(c, draw(st.booleans())) for c in CLIENTS)
    grants = tuple(
        GrantEntry(_principal(draw), draw(st.sampled_from(PATTERNS)), draw(st.sampled_from(list(Effect))),
                   draw(st.sampled_from(CONDITIONS)), None, draw(st.sampled_from((None, None, SOON, PAST))))
        for _ in range(draw(st.integers(0, 10)))
    )
    return PolicyDocument(ROLES, users, clients, grants)


@st.composite
def calls(draw) -> list[tuple]:
    found = []
    for _ in range(draw(st.integers(1, 8))):
        subject = draw(st.sampled_from((None,) + USERS))
        client = draw(st.sampled_from(CLIENTS if subject is None else (None,) + CLIENTS))
        found.append((subject, client, draw(st.sampled_from(TARGETS)), dict(draw(st.sampled_from(ARGS)))))
    return found


@pytest.fixture
def store(sqlite_url):
    from mcp_acl.store import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _replace_policy(admin: PolicyAdmin, doc: PolicyDocument) -> None:
    with admin.change() as conn:
        for table in (t.grants, t.role_members, t.users, t.roles, t.clients):
            conn.execute(delete(table))
    import_document(admin, doc)


def _same_grant(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (a.principal, a.effect, a.target, a.condition, a.expires_at) == (b.principal, b.effect, b.target, b.condition, b.expires_at)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents(), made=calls())
def test_replay_decides_each_row_as_check_does(store, doc, made):
    admin, log, loader = PolicyAdmin(store), AuditLog(store), PolicyLoader(store)
    _replace_policy(admin, doc)
    first = log.last_id() + 1
    for subject, client, target, args in made:
        question = Question(f"user:{subject}" if subject else f"client:{client}", target, args, client if subject else None)
        decision = ask(loader.current(), resolve(admin, question), question, datetime.now(timezone.utc))
        log.record_decision(session_id=None, identity=resolve(admin, question).identity, action="tools/call",
                            target=target, args=args, decision=decision, latency_ms=0.0)
    candidate = load_candidate(dump_document(doc), "candidate.yaml")
    with store.connect() as conn:
        rows = conn.execute(select(t.audit_events).where(t.audit_events.c.id >= first).order_by(t.audit_events.c.id)).all()
    assert len(rows) == len(made)
    for row, (subject, client, target, args) in zip(rows, made):
        replayed = redecide(candidate, row)
        if replayed is None:
            assert args, "a call without arguments is always decided"
            continue
        question = Question(f"user:{subject}" if subject else f"client:{client}", target, args, client if subject else None)
        checked = ask(loader.current(), resolve(admin, question), question, row.at)
        assert replayed.allowed == checked.allowed, (row.target, replayed.reason, checked.reason)
        if not args:
            # Decided in full, by decide() itself: the same deciding grant too.
            assert _same_grant(replayed.grant, checked.grant), (replayed.reason, checked.reason)
    assert replay(store, candidate, since=rows[0].at).flips == []
