"""The loader applies logged changes to its compiled policy, and the result is the policy a full reload compiles.

Random sequences of the admin's changes run against a real database
(SQLite and PostgreSQL); after each one the incrementally updated policy
of a long-lived loader must equal a fresh loader's full compile, index by
index. Any doubt about the change log (a gap, an unlogged change inside a
bigger transaction) must mean a full reload.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from mcp_acl.policy import Effect, Identity, PolicyError, decide
from mcp_acl.store import PolicyAdmin, PolicyLoader
from mcp_acl.store import tables as t
from mcp_acl.store.admin import AdminError

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
USERS = ["u0", "u1", "u2", "u3"]
ROLES = ["r0", "r1", "r2"]
CLIENTS = ["c0", "c1"]
TARGETS = ["tool:a.x", "tool:a.y", "tool:a.*", "tool:b.*", "tool:*", "resource:file:///r/*", "prompt:p"]
CONDITIONS = [None, None, "args.size < 100", '"r0" in user.roles']


def shape(policy) -> tuple:
    """Everything a decision reads from a compiled policy, as plain values."""
    def index(idx):
        return {lead: {p: [g.id for g in gs] for p, gs in by.items()} for lead, by in idx.items()}

    return (
        policy.revision, index(policy.exact_index), index(policy.wildcard_index),
        {p: [g.id for g in gs] for p, gs in policy._all.items()},
        {gid: cg.grant for gid, cg in policy._by_id.items()},
        policy.memberships, policy.clients, policy.disabled_users, policy.lead_lengths, policy.grant_count,
    )


def _seed(admin: PolicyAdmin) -> None:
    for role in ROLES:
        admin.add_role(role)
    for user in USERS:
        admin.add_user(user, [ROLES[0]])
    for client in CLIENTS:
        admin.add_client(client, restricted=client == "c1")


def _principal(draw) -> str:
    kind = draw(st.sampled_from(["user", "role", "client"]))
    return f"{kind}:" + draw(st.sampled_from({"user": USERS, "role": ROLES, "client": CLIENTS}[kind]))


@st.composite
def changes(draw) -> list[tuple]:
    """A sequence of admin changes, each (name, args)."""
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["grant", "grant", "grant", "revoke", "revoke", "assign", "unassign", "disable",
                                    "user", "client", "role", "remove_user", "remove_role", "remove_client"]))
        if op == "grant":
            expires = draw(st.sampled_from([None, NOW + timedelta(days=1), NOW - timedelta(days=1)]))
            steps.append((op, _principal(draw), draw(st.sampled_from(TARGETS)),
                          draw(st.sampled_from(list(Effect))), draw(st.sampled_from(CONDITIONS)), expires))
        elif op == "revoke":
            steps.append((op, draw(st.integers(0, 30))))
        elif op in ("assign", "unassign"):
            steps.append((op, draw(st.sampled_from(USERS)), draw(st.sampled_from(ROLES))))
        elif op == "disable":
            steps.append((op, draw(st.sampled_from(USERS)), draw(st.booleans())))
        elif op.startswith("remove_"):  # one that exists, with its grants and memberships; made again after
            steps.append((op, draw(st.sampled_from({"remove_user": USERS, "remove_role": ROLES, "remove_client": CLIENTS}[op]))))
        else:  # user, client, role: new names
            steps.append((op, draw(st.sampled_from(["n0", "n1", "n2"]))))
    return steps


def _apply(admin: PolicyAdmin, step: tuple, grant_ids: list[int]) -> None:
    op, *args = step
    try:
        if op == "grant":
            principal, target, effect, condition, expires = args
            grant_ids.append(admin.add_grant(principal, target, effect, condition, expires_at=expires))
        elif op == "revoke" and grant_ids:
            admin.revoke(grant_ids.pop(args[0] % len(grant_ids)))
        elif op == "assign":
            admin.assign(*args)
        elif op == "unassign":
            admin.unassign(*args)
        elif op == "disable":
            admin.set_user_disabled(*args)
        elif op == "user":
            admin.add_user(args[0], [ROLES[1]])
        elif op == "client":
            admin.add_client(args[0])
        elif op == "role":
            admin.add_role(args[0])
        elif op == "remove_user":
            admin.remove_user(args[0])
            admin.add_user(args[0], [ROLES[0]])
        elif op == "remove_role":
            admin.remove_role(args[0])
            admin.add_role(args[0])
        elif op == "remove_client":
            admin.remove_client(args[0])
            admin.add_client(args[0], restricted=args[0] == "c1")
    except AdminError:
        pass  # a change refused as asked (a name that exists, a missing membership) writes nothing


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=changes())
def test_incremental_updates_equal_a_full_reload(engine, steps):
    admin = PolicyAdmin(engine, actor="test")
    if not admin.list_users():
        _seed(admin)
    grant_ids = [g.id for g in admin.list_grants()]
    loader = PolicyLoader(engine)
    loader.current()
    for step in steps:
        _apply(admin, step, grant_ids)
        incremental, full = loader.current(), PolicyLoader(engine).current()
        assert shape(incremental) == shape(full)
        for user in USERS:
            for target in ("tool:a.x", "tool:b.q", "resource:file:///r/s"):
                ours, theirs = (decide(p, Identity(user, client_id="c1"), target, {"size": 5}, NOW) for p in (incremental, full))
                assert (ours.allowed, ours.grant) == (theirs.allowed, theirs.grant)
    assert loader.loads["full"] == 1  # every admin operation here logs what it changed


def test_a_grant_and_its_revocation_are_applied_without_a_full_reload(engine):
    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    before = loader.current()
    gid = admin.add_grant("user:u1", "tool:a.x")
    assert decide(loader.current(), Identity("u1"), "tool:a.x", {}, NOW).allowed
    admin.revoke(gid)
    assert not decide(loader.current(), Identity("u1"), "tool:a.x", {}, NOW).allowed
    assert loader.loads == {"full": 1, "incremental": 2}
    assert before.grant_count == 0  # the policy handed out earlier is left as it was


def test_a_revision_missing_from_the_log_means_a_full_reload(engine):
    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    loader.current()
    admin.add_grant("user:u1", "tool:a.x")
    with engine.begin() as conn:  # as a writer that logs nothing (an older version) leaves it
        conn.execute(delete(t.policy_changes).where(t.policy_changes.c.revision == admin.revision()))
    assert decide(loader.current(), Identity("u1"), "tool:a.x", {}, NOW).allowed
    assert loader.loads == {"full": 2, "incremental": 0}


def test_a_change_inside_a_bigger_transaction_is_not_logged(engine):
    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    loader.current()
    with admin.change() as conn:  # an import: several operations, one revision
        admin.add_grant("user:u1", "tool:a.x", conn=conn)
        conn.execute(delete(t.role_members).where(t.role_members.c.user_name == "u2"))
    with engine.connect() as conn:
        assert conn.execute(select(t.policy_changes).where(t.policy_changes.c.revision == admin.revision())).first() is None
    assert shape(loader.current()) == shape(PolicyLoader(engine).current())
    assert loader.loads["full"] == 2


def test_a_kind_the_loader_does_not_know_means_a_full_reload(engine):
    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    loader.current()
    with admin.change([("something-new", "x")]) as conn:
        conn.execute(delete(t.role_members).where(t.role_members.c.user_name == "u2"))
    assert "u2" not in loader.current().memberships
    assert loader.loads["full"] == 2


def test_a_broken_grant_applied_incrementally_fails_like_a_full_compile(engine):
    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    loader.current()
    changed: list[tuple[str, str]] = []
    with admin.change(changed) as conn:  # a row the admin would refuse, written behind its back
        gid = conn.execute(insert(t.grants).values(
            principal="user:u1", effect="allow", target="tool:a.x", condition="args.(", created_at=NOW,
        )).inserted_primary_key[0]
        changed.append(("grant", str(gid)))
    with pytest.raises(PolicyError):
        loader.current()
    with pytest.raises(PolicyError):
        PolicyLoader(engine).current()


def test_threads_asking_at_once_after_a_change_share_one_load(engine):
    import threading

    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    loader.current()
    admin.add_grant("user:u1", "tool:a.x")
    start = threading.Barrier(4)
    seen = []

    def ask() -> None:
        start.wait()
        seen.append(loader.current())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(policy) for policy in seen}) == 1
    assert loader.loads == {"full": 1, "incremental": 1}


def test_an_upstream_change_bumps_the_revision_without_a_full_reload(engine):
    # Upstream rows are not compiled into the policy; gateways re-read them by generation.
    admin = PolicyAdmin(engine)
    _seed(admin)
    loader = PolicyLoader(engine)
    before = loader.current()
    with admin.change([("upstream", "files")]):
        pass
    after = loader.current()
    assert after.revision == before.revision + 1 and shape(after)[1:] == shape(before)[1:]
    assert loader.loads == {"full": 1, "incremental": 1}
