"""Callers: an identity's sides and variables, prepared once per policy revision."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide, parse_target_pattern
from mcp_acl.policy import compiled
from mcp_acl.policy.compiled import ClientInfo

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _ids(grants) -> list[int]:
    return [cg.id for cg in grants]


def test_equal_identities_share_what_was_prepared():
    policy = compile_policy(1, [])
    assert policy.caller(Identity("alice")).sides is policy.caller(Identity("alice")).sides
    assert policy.caller(Identity("alice")).sides is not policy.caller(Identity("alice", "app")).sides


def test_the_same_identity_object_gets_the_same_caller():
    policy, alice = compile_policy(1, []), Identity("alice")
    assert policy.caller(alice) is policy.caller(alice)
    assert policy.caller(alice).identity is alice


def test_memo_starts_afresh_when_full(monkeypatch):
    monkeypatch.setattr(compiled, "CALLER_MEMO_SIZE", 2)
    policy = compile_policy(1, [])
    first = policy.caller(Identity("a")).sides
    policy.caller(Identity("b"))
    policy.caller(Identity("c"))
    assert policy.caller(Identity("a")).sides is not first


def test_identity_with_mutable_role_sets_is_still_decided():
    policy = compile_policy(1, [Grant(1, "role:r", Effect.ALLOW, "tool:t")])
    assert decide(policy, Identity("bob", roles={"r"}), "tool:t", {}, NOW).allowed  # type: ignore[arg-type]


def test_user_side_holds_the_user_and_its_roles_in_order():
    policy = compile_policy(1, [], {"alice": ["b", "a"]})
    (side,) = policy.caller(Identity("alice", "app")).sides
    assert side.who == "user alice"
    assert side.principals == ("user:alice", "role:a", "role:b")


def test_restricted_client_adds_a_client_side():
    policy = compile_policy(1, [], {}, [ClientInfo("agent", True)])
    sides = policy.caller(Identity("alice", "agent")).sides
    assert [s.who for s in sides] == ["user alice", "the restricted client agent"]
    assert sides[1].principals == ("client:agent",)


def test_service_identity_has_only_the_client_side():
    (side,) = compile_policy(1, []).caller(Identity(None, "svc", frozenset({"r"}))).sides
    assert (side.who, side.principals) == ("client svc", ("client:svc",))


def test_disabled_user_and_nobody_are_refused():
    policy = compile_policy(1, [], disabled_users=["alice"])
    assert policy.caller(Identity("alice")).refusal == "user alice is disabled"
    assert policy.caller(Identity(None)).refusal == "the caller has neither a user nor a client"
    assert policy.caller(Identity("bob")).refusal is None


def test_side_matching_merges_principals_lowest_id_first():
    policy = compile_policy(1, [
        Grant(5, "role:a", Effect.ALLOW, "tool:t"),
        Grant(2, "role:b", Effect.DENY, "tool:*"),
        Grant(9, "user:alice", Effect.ALLOW, "tool:t?"),
        Grant(1, "user:alice", Effect.ALLOW, "tool:t"),
        Grant(3, "role:c", Effect.ALLOW, "tool:t"),
    ], {"alice": ["a", "b"]})
    (side,) = policy.caller(Identity("alice")).sides
    assert _ids(side.matching("tool:t", NOW)) == [1, 2, 5]
    assert _ids(side.matching("tool:tx", NOW)) == [2, 9]


def test_side_matching_leaves_out_expired_grants():
    policy = compile_policy(1, [
        Grant(1, "user:alice", Effect.ALLOW, "tool:t", expires_at=NOW),
        Grant(2, "user:alice", Effect.ALLOW, "tool:*", expires_at=NOW + timedelta(seconds=1)),
    ])
    (side,) = policy.caller(Identity("alice")).sides
    assert _ids(side.matching("tool:t", NOW)) == [2]


def test_caller_variables_are_the_condition_inputs():
    policy = compile_policy(1, [], {"alice": ["r"]}, [ClientInfo("agent", True)])
    caller = policy.caller(Identity("alice", "agent"))
    assert caller.user == {"sub": "alice", "roles": ["r"]}
    assert caller.client == {"id": "agent", "restricted": True}


_GLOBS = ("a", "ab", "a.b", "a/b", "*", "a*", "*b", "a*b", "?", "a?", "?b", "a.*", "a/*", "ab*", "a**")
_grants = st.lists(
    st.builds(
        Grant,
        st.just(0),
        st.sampled_from(("user:alice", "role:a", "role:b", "client:agent")),
        st.sampled_from(list(Effect)),
        st.builds(lambda k, g: f"{k}:{g}", st.sampled_from(("tool", "resource", "prompt")), st.sampled_from(_GLOBS)),
        st.none(),
        st.sampled_from((None, NOW, NOW + timedelta(hours=1))),
    ),
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(_grants, st.sampled_from(("tool", "resource", "prompt")), st.sampled_from(("a", "b", "ab", "a.b", "a/b", "abb", "a.")))
def test_side_matching_finds_what_a_scan_of_every_grant_finds(grants, kind, name):
    grants = [replace(g, id=i) for i, g in enumerate(grants, 1)]
    policy = compile_policy(1, grants, {"alice": ["a", "b"]})
    (side,) = policy.caller(Identity("alice")).sides
    target = f"{kind}:{name}"
    scanned = [
        g.id for g in grants
        if g.principal in side.principals and parse_target_pattern(g.target).matches(target)
        and (g.expires_at is None or NOW < g.expires_at)
    ]
    assert _ids(side.matching(target, NOW)) == scanned
