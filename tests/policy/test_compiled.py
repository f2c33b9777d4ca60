"""The compiled policy: validation of every grant, the index, roles and clients."""

from __future__ import annotations

from datetime import datetime

import pytest

from mcp_acl.policy import Effect, Grant, Identity, PolicyError, compile_policy
from mcp_acl.policy.compiled import ClientInfo, compile_grant


def _ids(grants) -> list[int]:
    return sorted(cg.grant.id for cg in grants)


@pytest.mark.parametrize(
    "grant, problem",
    [
        (Grant(4, "group:x", Effect.ALLOW, "tool:t"), "grant #4: unknown principal kind 'group'"),
        (Grant(5, "user:a", Effect.ALLOW, "tools:t"), "grant #5: unknown target kind 'tools'"),
        (Grant(6, "user:a", Effect.ALLOW, "tool:t", "args.("), "grant #6: condition 'args.(' does not compile: at line 1"),
        (Grant(7, "user:a", Effect.ALLOW, "tool:t", "secret"), "grant #7: condition 'secret' uses unknown variable"),
        (Grant(8, "user:a", Effect.ALLOW, "tool:t", expires_at=datetime(2030, 1, 1)), "grant #8: the expiry has no timezone"),
    ],
)
def test_broken_grant_fails_the_whole_compile_naming_it(grant, problem):
    with pytest.raises(PolicyError) as caught:
        compile_policy(1, [Grant(1, "user:a", Effect.ALLOW, "tool:t"), grant])
    assert str(caught.value).startswith(problem)


def test_matching_finds_exact_and_wildcard_grants_of_the_principal():
    policy = compile_policy(1, [
        Grant(1, "role:r", Effect.ALLOW, "tool:files.read"),
        Grant(2, "role:r", Effect.DENY, "tool:files.*"),
        Grant(3, "role:r", Effect.ALLOW, "tool:other"),
        Grant(4, "role:r", Effect.ALLOW, "prompt:files.read"),
        Grant(5, "role:s", Effect.ALLOW, "tool:files.read"),
    ])
    assert _ids(policy.matching("role:r", "tool", "files.read")) == [1, 2]
    assert _ids(policy.matching("role:r", "resource", "files.read")) == []
    assert _ids(policy.matching("role:nobody", "tool", "files.read")) == []


def test_grants_of_lists_a_principals_grants_of_one_kind():
    policy = compile_policy(1, [
        Grant(1, "user:a", Effect.ALLOW, "tool:x"),
        Grant(2, "user:a", Effect.ALLOW, "tool:y*"),
        Grant(3, "user:a", Effect.ALLOW, "prompt:x"),
    ])
    assert _ids(policy.grants_of("user:a", "tool")) == [1, 2]


def test_grant_count_counts_every_grant():
    grants = [Grant(i, "user:a", Effect.ALLOW, f"tool:t{i}") for i in range(1, 6)]
    assert compile_policy(1, grants).grant_count == 5


def test_roles_join_memberships_and_the_identitys_own():
    policy = compile_policy(1, [], {"alice": ["a", "b"]})
    assert policy.roles_of(Identity("alice", roles=frozenset({"c"}))) == {"a", "b", "c"}
    assert policy.roles_of(Identity("bob")) == frozenset()


def test_service_identity_has_no_roles():
    policy = compile_policy(1, [], {"svc": ["a"]})
    assert policy.roles_of(Identity(None, "svc", roles=frozenset({"b"}))) == frozenset()


def test_only_a_registered_restricted_client_is_restricted():
    policy = compile_policy(1, [], {}, [ClientInfo("agent", True), ClientInfo("app", False)])
    assert policy.is_restricted("agent")
    assert not policy.is_restricted("app")
    assert not policy.is_restricted("unknown")
    assert not policy.is_restricted(None)


@pytest.mark.parametrize(
    "pattern, covered, not_covered",
    [
        ("tool:a.b", ["tool:a.b"], ["tool:a.bc", "prompt:a.b"]),
        ("tool:a.*", ["tool:a.", "tool:a.b/c"], ["tool:ab", "prompt:a.b"]),
        ("tool:*", ["tool:x"], ["prompt:x"]),
        ("tool:a*b", ["tool:ab", "tool:a/xb"], ["tool:abc"]),
        ("resource:file:///r/?.md", ["resource:file:///r/1.md"], ["resource:file:///r/12.md"]),
    ],
)
def test_compiled_grant_covers_exactly_what_its_pattern_matches(pattern, covered, not_covered):
    cg = compile_grant(Grant(1, "user:a", Effect.ALLOW, pattern))
    for target in covered:
        assert cg.covers(target) and cg.pattern.matches(target)
    for target in not_covered:
        assert not cg.covers(target) and not cg.pattern.matches(target)



def test_a_grant_replaced_in_one_update_is_placed():
    # SQLite reuses the highest INTEGER PRIMARY KEY once its row is deleted: one
    # incremental update then takes grant #1 out and puts a new grant #1 in, and
    # the containers freed by the removal must not pass for the update's own copies.
    from datetime import datetime, timezone

    from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide
    from mcp_acl.policy.compiled import compile_grant

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    policy = compile_policy(1, [Grant(1, "user:alice", Effect.ALLOW, "tool:a")])
    for revision in range(2, 8):
        new = compile_grant(Grant(1, "user:alice", Effect.ALLOW, "tool:a", note=str(revision)))
        policy = policy.updated(revision, grants={1: new})
        assert decide(policy, Identity("alice"), "tool:a", None, now).grant.note == str(revision)


def test_an_update_that_empties_one_index_entry_and_opens_another_keeps_both_changes():
    # Removing the last grant of a principal on one target frees the inner list and dict that held it;
    # the fresh, empty ones made for a new principal on another target must not be mistaken for them.
    policy = compile_policy(1, [
        Grant(1, "role:analyst", Effect.ALLOW, "tool:files.read"),
        Grant(2, "role:analyst", Effect.ALLOW, "tool:sql.select"),
        Grant(3, "role:intern", Effect.ALLOW, "tool:files.list"),
    ])
    for _ in range(50):  # the collision depends on the allocator reusing an address: try it often
        moved = policy.updated(2, grants={1: None, 4: compile_grant(Grant(4, "role:intern", Effect.ALLOW, "tool:sql.select"))})
        assert _ids(moved.matching("role:intern", "tool", "sql.select")) == [4]
        assert _ids(moved.matching("role:analyst", "tool", "files.read")) == []
        assert _ids(moved.matching("role:analyst", "tool", "sql.select")) == [2]
        assert _ids(policy.matching("role:analyst", "tool", "files.read")) == [1]
