"""Quotas never allow what the base semantics deny (Hypothesis), decided in memory and counted in real SQL.

Random grant sets get random limits and rates on their allows; random calls
are decided, then counted through the audit log's real append (the
admission's transaction) on SQLite and PostgreSQL. Whatever the quotas,
a call is admitted only if the same policy without quotas allows it, and
no window ever holds more calls than its grant's quota.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from mcp_acl.audit import AuditLog
from mcp_acl.gateway.quotas import quota_charge
from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide
from mcp_acl.policy.compiled import ClientInfo
from mcp_acl.policy.quotas import allowances, parse_quota
from mcp_acl.store import tables as t

NOW = datetime(2026, 12, 9, 10, 30, tzinfo=timezone.utc)
USERS = ("alice", "bob")
ROLES = ("r1", "r2")
CLIENTS = ("agent", "app")
PRINCIPALS = tuple(f"user:{u}" for u in USERS) + tuple(f"role:{r}" for r in ROLES) + tuple(f"client:{c}" for c in CLIENTS)
TARGETS = ("tool:a", "tool:b", "tool:a.b")
PATTERNS = TARGETS + ("tool:*", "tool:a*")
CONDITIONS = (None, None, "args.n > 1", 'user.sub == "alice"', "args.never_given == 1")
QUOTAS = (None, None, "1/day", "2/day", "1/min", "3/hour")
MEMBERS = {"alice": frozenset({"r1"}), "bob": frozenset({"r2"})}


def _grant(principal, effect, target, when, limit, rate):
    allow = effect is Effect.ALLOW
    return Grant(0, principal, effect, target, when, limit=limit if allow else None, rate=rate if allow else None)


grant_lists = st.lists(
    st.builds(
        _grant, st.sampled_from(PRINCIPALS), st.sampled_from(list(Effect)), st.sampled_from(PATTERNS),
        st.sampled_from(CONDITIONS), st.sampled_from(QUOTAS), st.sampled_from(QUOTAS),
    ),
    max_size=8,
).map(lambda grants: [replace(g, id=i) for i, g in enumerate(grants, 1)])
identities = st.builds(Identity, st.sampled_from((None,) + USERS), st.sampled_from((None,) + CLIENTS))
calls = st.lists(
    st.tuples(identities, st.sampled_from(TARGETS), st.fixed_dictionaries({}, optional={"n": st.integers(0, 3)})),
    min_size=1, max_size=12,
)
restricted = st.sets(st.sampled_from(CLIENTS))


def _policies(grants, restricted_clients):
    clients = [ClientInfo(c, c in restricted_clients) for c in CLIENTS]
    with_quotas = compile_policy(1, grants, MEMBERS, clients)
    without = compile_policy(1, [replace(g, limit=None, rate=None) for g in grants], MEMBERS, clients)
    return with_quotas, without


@settings(max_examples=300, deadline=None)
@given(grant_lists, restricted, calls)
def test_quotas_leave_decide_alone_and_count_only_allowed_calls(grants, restricted_clients, asked):
    with_quotas, without = _policies(grants, restricted_clients)
    by_id = {g.id: g for g in grants}
    for identity, target, args in asked:
        decision = decide(with_quotas, identity, target, args, NOW)
        assert (decision.allowed, decision.grant_id) == (lambda d: (d.allowed, d.grant_id))(decide(without, identity, target, args, NOW))
        found = allowances(with_quotas, identity, target, args, NOW, decision)
        if not decision.allowed:
            assert found == ()
        for allowance in found:
            for grant_id, quotas in allowance.grants:
                grant = by_id[grant_id]
                assert grant.effect is Effect.ALLOW and quotas and (grant.limit or grant.rate)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grant_lists, restricted, calls)
def test_admitted_calls_are_allowed_by_the_base_semantics_and_within_every_quota(engine, grants, restricted_clients, asked):
    with engine.begin() as conn:
        conn.execute(delete(t.grant_usage))
    audit = AuditLog(engine)
    with_quotas, without = _policies(grants, restricted_clients)
    for identity, target, args in asked:
        decision, charge = quota_charge(with_quotas, identity, target, args, NOW, decide(with_quotas, identity, target, args, NOW))
        row = audit.record_decision(
            session_id=None, identity=identity, action="tools/call", target=target, args=args,
            decision=decision, latency_ms=0.0, **({"quota": charge} if charge else {}),
        )
        admitted = decision.allowed and (charge is None or charge.refusal is None)
        assert audit.row(row)["decision"] == ("allow" if admitted else "deny")
        if admitted:
            assert decide(without, identity, target, args, NOW).allowed
    quotas = {(g.id, kind): parse_quota(getattr(g, kind)) for g in grants for kind in ("limit", "rate") if getattr(g, kind)}
    with engine.connect() as conn:
        for usage in conn.execute(select(t.grant_usage)):
            assert 0 <= usage.calls <= quotas[(usage.grant_id, usage.kind)].calls
