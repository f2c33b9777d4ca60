"""decide(), visible() and limits(): each row of DESIGN.md's decision semantics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide, visible
from mcp_acl.policy.compiled import ClientInfo
from mcp_acl.policy.decide import condition_context, limits

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
ALICE = Identity("alice")


def grant(gid, principal, target, effect="allow", when=None, expires=None, note=None) -> Grant:
    return Grant(gid, principal, Effect(effect), target, when, expires, note)


def policy(*grants, members=None, clients=(), disabled=(), revision=7):
    return compile_policy(revision, grants, members or {}, clients, disabled)


def test_no_grant_denies_by_default():
    decision = decide(policy(), ALICE, "tool:files.read", {}, NOW)
    assert not decision.allowed
    assert decision.grant is None
    assert decision.reason == "no grant allows user alice to use tool:files.read"


def test_matching_allow_allows_and_names_the_grant():
    decision = decide(policy(grant(1, "user:alice", "tool:files.read")), ALICE, "tool:files.read", {}, NOW)
    assert decision.allowed
    assert decision.grant_id == 1
    assert decision.reason == "tool:files.read is allowed to user alice by grant #1"


def test_every_decision_carries_the_revision():
    p = policy(grant(1, "user:alice", "tool:a"), revision=42)
    assert decide(p, ALICE, "tool:a", {}, NOW).revision == 42
    assert decide(p, ALICE, "tool:b", {}, NOW).revision == 42
    assert decide(p, ALICE, "bad", {}, NOW).revision == 42


def test_allow_for_another_target_does_not_apply():
    p = policy(grant(1, "user:alice", "tool:files.read"))
    assert not decide(p, ALICE, "tool:files.write", {}, NOW).allowed


def test_allow_for_another_user_does_not_apply():
    p = policy(grant(1, "user:bob", "tool:files.read"))
    assert not decide(p, ALICE, "tool:files.read", {}, NOW).allowed


def test_wildcard_allow_covers_the_target():
    p = policy(grant(1, "user:alice", "resource:file:///reports/*"))
    assert decide(p, ALICE, "resource:file:///reports/q3.md", None, NOW).allowed
    assert not decide(p, ALICE, "resource:file:///secrets/k", None, NOW).allowed


def test_deny_overrides_allow():
    p = policy(grant(1, "user:alice", "tool:*"), grant(2, "user:alice", "tool:files.delete", "deny"))
    decision = decide(p, ALICE, "tool:files.delete", {}, NOW)
    assert not decision.allowed
    assert decision.grant_id == 2
    assert decision.reason == "tool:files.delete is denied to user alice by grant #2"


def test_deny_on_a_role_overrides_allow_on_the_user():
    p = policy(
        grant(1, "user:alice", "tool:x"), grant(2, "role:intern", "tool:*", "deny"),
        members={"alice": ["intern"]},
    )
    assert decide(p, ALICE, "tool:x", {}, NOW).grant_id == 2


def test_conditional_deny_denies_only_when_its_condition_holds():
    p = policy(
        grant(1, "user:alice", "tool:files.write"),
        grant(2, "user:alice", "tool:files.write", "deny", when='args.path.startsWith("/etc")'),
    )
    denied = decide(p, ALICE, "tool:files.write", {"path": "/etc/passwd"}, NOW)
    assert not denied.allowed and denied.grant_id == 2
    assert "because args.path.startsWith" in denied.reason
    allowed = decide(p, ALICE, "tool:files.write", {"path": "/tmp/x"}, NOW)
    assert allowed.allowed and allowed.grant_id == 1


def test_conditional_allow_allows_when_its_condition_holds():
    p = policy(grant(1, "user:alice", "tool:files.read", when='args.path.startsWith("reports/")'))
    decision = decide(p, ALICE, "tool:files.read", {"path": "reports/q3"}, NOW)
    assert decision.allowed
    assert decision.reason.endswith('because args.path.startsWith("reports/")')


def test_allow_whose_condition_is_false_denies_and_says_so():
    p = policy(grant(1, "user:alice", "tool:files.read", when='args.path.startsWith("reports/")'))
    decision = decide(p, ALICE, "tool:files.read", {"path": "secrets"}, NOW)
    assert not decision.allowed
    assert decision.grant_id == 1
    assert "does not hold for these arguments" in decision.reason


def test_allow_whose_condition_errors_counts_as_false():
    p = policy(grant(1, "user:alice", "tool:files.read", when='args.path.startsWith("reports/")'))
    decision = decide(p, ALICE, "tool:files.read", {}, NOW)
    assert not decision.allowed
    assert "could not be evaluated" in decision.reason


def test_erroring_allow_does_not_stop_another_allow():
    p = policy(grant(1, "user:alice", "tool:t", when="args.n > 1"), grant(2, "user:alice", "tool:t"))
    assert decide(p, ALICE, "tool:t", {}, NOW).grant_id == 2


def test_deny_whose_condition_errors_counts_as_true():
    p = policy(grant(1, "user:alice", "tool:t"), grant(2, "user:alice", "tool:t", "deny", when="args.n > 1"))
    decision = decide(p, ALICE, "tool:t", {"n": "not a number"}, NOW)
    assert not decision.allowed
    assert decision.grant_id == 2
    assert "could not be evaluated" in decision.reason and "counts as holding" in decision.reason


def test_expired_allow_no_longer_applies():
    p = policy(grant(1, "user:alice", "tool:t", expires=NOW))
    assert not decide(p, ALICE, "tool:t", {}, NOW).allowed
    assert decide(p, ALICE, "tool:t", {}, NOW - timedelta(seconds=1)).allowed


def test_expired_deny_no_longer_denies():
    p = policy(grant(1, "user:alice", "tool:t"), grant(2, "user:alice", "tool:t", "deny", expires=NOW))
    assert decide(p, ALICE, "tool:t", {}, NOW + timedelta(days=1)).allowed


def test_decision_time_without_timezone_denies():
    p = policy(grant(1, "user:alice", "tool:t"))
    decision = decide(p, ALICE, "tool:t", {}, datetime(2026, 1, 1))
    assert not decision.allowed
    assert decision.reason == "the decision time has no timezone"


def test_roles_from_stored_memberships_apply():
    p = policy(grant(1, "role:analyst", "tool:t"), members={"alice": ["analyst"]})
    assert decide(p, ALICE, "tool:t", {}, NOW).allowed
    assert not decide(p, Identity("bob"), "tool:t", {}, NOW).allowed


def test_roles_from_the_identity_apply():
    p = policy(grant(1, "role:analyst", "tool:t"))
    assert decide(p, Identity("bob", roles=frozenset({"analyst"})), "tool:t", {}, NOW).allowed


def test_condition_sees_roles_from_both_sources():
    p = policy(
        grant(1, "user:alice", "tool:t", when='"a" in user.roles && "b" in user.roles'),
        members={"alice": ["a"]},
    )
    assert decide(p, Identity("alice", roles=frozenset({"b"})), "tool:t", {}, NOW).allowed
    assert not decide(p, ALICE, "tool:t", {}, NOW).allowed


def test_restricted_client_without_a_grant_caps_the_user():
    p = policy(grant(1, "user:alice", "tool:t"), clients=[ClientInfo("agent", True)])
    decision = decide(p, Identity("alice", "agent"), "tool:t", {}, NOW)
    assert not decision.allowed
    assert decision.reason == "no grant allows the restricted client agent to use tool:t"


def test_restricted_client_with_a_grant_lets_the_user_through():
    p = policy(
        grant(1, "user:alice", "tool:t"), grant(2, "client:agent", "tool:*"),
        clients=[ClientInfo("agent", True)],
    )
    decision = decide(p, Identity("alice", "agent"), "tool:t", {}, NOW)
    assert decision.allowed
    assert decision.grant_id == 1  # the subject side's grant is reported


def test_restricted_client_deny_refuses_the_user():
    p = policy(
        grant(1, "user:alice", "tool:t"), grant(2, "client:agent", "tool:*"),
        grant(3, "client:agent", "tool:t", "deny"), clients=[ClientInfo("agent", True)],
    )
    assert decide(p, Identity("alice", "agent"), "tool:t", {}, NOW).grant_id == 3


def test_restricted_client_never_exceeds_the_user():
    p = policy(grant(1, "client:agent", "tool:t"), clients=[ClientInfo("agent", True)])
    decision = decide(p, Identity("alice", "agent"), "tool:t", {}, NOW)
    assert not decision.allowed
    assert decision.reason == "no grant allows user alice to use tool:t"


def test_unrestricted_client_needs_no_grant_of_its_own():
    p = policy(grant(1, "user:alice", "tool:t"), clients=[ClientInfo("app", False)])
    assert decide(p, Identity("alice", "app"), "tool:t", {}, NOW).allowed


def test_unregistered_client_is_unrestricted():
    p = policy(grant(1, "user:alice", "tool:t"))
    assert decide(p, Identity("alice", "unknown-app"), "tool:t", {}, NOW).allowed


def test_client_grants_give_a_user_nothing():
    p = policy(grant(1, "client:app", "tool:t"), clients=[ClientInfo("app", False)])
    assert not decide(p, Identity("alice", "app"), "tool:t", {}, NOW).allowed


def test_service_identity_is_decided_on_the_client_side_alone():
    p = policy(grant(1, "client:svc", "tool:t"), clients=[ClientInfo("svc", False)])
    decision = decide(p, Identity(None, "svc"), "tool:t", {}, NOW)
    assert decision.allowed
    assert decision.reason == "tool:t is allowed to client svc by grant #1"


def test_service_identity_without_a_client_grant_is_denied():
    p = policy(grant(1, "user:svc", "tool:t"), grant(2, "role:svc", "tool:t"))
    assert not decide(p, Identity(None, "svc", roles=frozenset({"svc"})), "tool:t", {}, NOW).allowed


def test_condition_of_a_service_identity_sees_a_null_user():
    p = policy(grant(1, "client:svc", "tool:t", when="user == null && client.id == 'svc'"))
    assert decide(p, Identity(None, "svc"), "tool:t", {}, NOW).allowed


def test_identity_with_neither_user_nor_client_is_denied():
    p = policy(grant(1, "user:alice", "tool:t"))
    decision = decide(p, Identity(None), "tool:t", {}, NOW)
    assert not decision.allowed
    assert decision.reason == "the caller has neither a user nor a client"


def test_disabled_user_is_denied_despite_an_allow():
    p = policy(grant(1, "user:alice", "tool:t"), disabled=["alice"])
    decision = decide(p, ALICE, "tool:t", {}, NOW)
    assert not decision.allowed
    assert decision.reason == "user alice is disabled"


@pytest.mark.parametrize("target", ["files.read", "tool:", "tool:files.*", "command:x", "tool:a b"])
def test_malformed_target_is_denied(target):
    p = policy(grant(1, "user:alice", "tool:*"))
    decision = decide(p, ALICE, target, {}, NOW)
    assert not decision.allowed
    assert decision.reason.startswith("malformed target: ")


def test_target_that_is_not_text_is_denied():
    p = policy(grant(1, "user:alice", "tool:*"))
    decision = decide(p, ALICE, None, {}, NOW)  # type: ignore[arg-type]
    assert not decision.allowed
    assert decision.reason == "malformed target: the target is not text"


def test_arguments_that_are_not_an_object_are_denied():
    p = policy(grant(1, "user:alice", "tool:t"))
    decision = decide(p, ALICE, "tool:t", ["a"], NOW)  # type: ignore[arg-type]
    assert not decision.allowed
    assert decision.reason == "the arguments are not an object"


def test_lowest_id_decides_among_several_allows():
    p = policy(grant(5, "role:r", "tool:*"), grant(3, "user:alice", "tool:t"), members={"alice": ["r"]})
    assert decide(p, ALICE, "tool:t", {}, NOW).grant_id == 3


def test_decision_lists_the_live_grants_it_considered():
    p = policy(
        grant(1, "user:alice", "tool:t"), grant(2, "user:alice", "tool:*", expires=NOW),
        grant(3, "user:alice", "tool:other"), grant(4, "user:alice", "tool:?"),
    )
    assert decide(p, ALICE, "tool:t", {}, NOW).considered == (1, 4)


def test_decision_as_dict_is_the_check_json_shape():
    p = policy(grant(9, "user:alice", "tool:t"), revision=3)
    assert decide(p, ALICE, "tool:t", {}, NOW).as_dict() == {
        "allowed": True, "reason": "tool:t is allowed to user alice by grant #9", "grant": 9, "revision": 3,
    }


def test_condition_context_holds_the_four_variables():
    p = policy(members={"alice": ["b", "a"]}, clients=[ClientInfo("agent", True)])
    context = condition_context(p, Identity("alice", "agent", frozenset({"c"})), None, NOW)
    assert context == {
        "args": {}, "user": {"sub": "alice", "roles": ["a", "b", "c"]},
        "client": {"id": "agent", "restricted": True}, "now": NOW,
    }


def test_condition_can_read_now():
    p = policy(grant(1, "user:alice", "tool:t", when='now < timestamp("2026-06-01T00:00:00Z")'))
    assert decide(p, ALICE, "tool:t", {}, NOW).allowed
    assert not decide(p, ALICE, "tool:t", {}, NOW + timedelta(days=200)).allowed


# visible(): listed when both sides have an allow that could hold, and no
# deny that holds whatever the arguments.


def test_target_without_grant_is_hidden():
    assert not visible(policy(), ALICE, "tool:t", NOW)


def test_unconditionally_allowed_target_is_visible():
    assert visible(policy(grant(1, "user:alice", "tool:*")), ALICE, "tool:t", NOW)


def test_allow_with_an_args_condition_makes_the_target_visible():
    p = policy(grant(1, "user:alice", "tool:t", when="args.n > 1"))
    assert visible(p, ALICE, "tool:t", NOW)


def test_args_free_allow_condition_is_evaluated_now():
    p = policy(grant(1, "user:alice", "tool:t", when='now < timestamp("2026-06-01T00:00:00Z")'))
    assert visible(p, ALICE, "tool:t", NOW)
    assert not visible(p, ALICE, "tool:t", NOW + timedelta(days=200))


def test_args_free_allow_condition_that_errors_hides():
    p = policy(grant(1, "user:alice", "tool:t", when='client.id == "x"'))
    assert not visible(p, ALICE, "tool:t", NOW)


def test_unconditional_deny_hides():
    p = policy(grant(1, "user:alice", "tool:*"), grant(2, "user:alice", "tool:t", "deny"))
    assert not visible(p, ALICE, "tool:t", NOW)
    assert visible(p, ALICE, "tool:u", NOW)


def test_deny_with_an_args_condition_does_not_hide():
    p = policy(grant(1, "user:alice", "tool:t"), grant(2, "user:alice", "tool:t", "deny", when="args.n > 1"))
    assert visible(p, ALICE, "tool:t", NOW)


def test_args_free_deny_hides_only_while_it_holds():
    p = policy(
        grant(1, "user:alice", "tool:t"),
        grant(2, "user:alice", "tool:t", "deny", when='now >= timestamp("2026-06-01T00:00:00Z")'),
    )
    assert visible(p, ALICE, "tool:t", NOW)
    assert not visible(p, ALICE, "tool:t", NOW + timedelta(days=200))


def test_args_free_deny_that_errors_hides():
    p = policy(grant(1, "user:alice", "tool:t"), grant(2, "user:alice", "tool:t", "deny", when="client.restricted"))
    assert not visible(p, ALICE, "tool:t", NOW)


def test_expired_allow_hides():
    assert not visible(policy(grant(1, "user:alice", "tool:t", expires=NOW)), ALICE, "tool:t", NOW)


def test_restricted_client_without_an_allow_hides():
    p = policy(grant(1, "user:alice", "tool:t"), clients=[ClientInfo("agent", True)])
    assert not visible(p, Identity("alice", "agent"), "tool:t", NOW)
    p2 = policy(grant(1, "user:alice", "tool:t"), grant(2, "client:agent", "tool:t"), clients=[ClientInfo("agent", True)])
    assert visible(p2, Identity("alice", "agent"), "tool:t", NOW)


def test_service_identity_sees_what_its_client_may_use():
    p = policy(grant(1, "client:svc", "prompt:*"))
    assert visible(p, Identity(None, "svc"), "prompt:summary", NOW)
    assert not visible(p, Identity(None, "svc"), "tool:summary", NOW)


def test_disabled_user_sees_nothing():
    assert not visible(policy(grant(1, "user:alice", "tool:*"), disabled=["alice"]), ALICE, "tool:t", NOW)


@pytest.mark.parametrize("target", ["t", "tool:*", "tool:"])
def test_malformed_target_is_hidden(target):
    assert not visible(policy(grant(1, "user:alice", "tool:*")), ALICE, target, NOW)


def test_identity_with_neither_user_nor_client_sees_nothing():
    assert not visible(policy(grant(1, "user:alice", "tool:*")), Identity(None), "tool:t", NOW)


# limits(): what the allowing grants tell the model.


def test_limits_give_notes_else_conditions_of_allows():
    p = policy(
        grant(1, "user:alice", "tool:t", note="only your own reports"),
        grant(2, "role:r", "tool:*", when="args.n < 10"),
        grant(3, "user:alice", "tool:t"),
        grant(4, "user:alice", "tool:t", "deny", when="args.n == 3", note="never three"),
        members={"alice": ["r"]},
    )
    assert limits(p, ALICE, "tool:t", NOW) == ["only your own reports", "only when args.n < 10"]


def test_limits_include_the_restricted_clients_and_drop_repeats():
    p = policy(
        grant(1, "user:alice", "tool:t", note="small files"),
        grant(2, "client:agent", "tool:t", note="small files"),
        grant(3, "client:agent", "tool:t", note="read only"),
        clients=[ClientInfo("agent", True)],
    )
    assert limits(p, Identity("alice", "agent"), "tool:t", NOW) == ["small files", "read only"]


def test_limits_of_a_malformed_target_are_empty():
    assert limits(policy(grant(1, "user:alice", "tool:*", note="x")), ALICE, "tool:*", NOW) == []
