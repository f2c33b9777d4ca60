"""Narrowed tokens in the pure core: parsing the details, and properties (Hypothesis) showing a
narrowing never allows or lists what the base semantics deny or hide."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_acl.policy import Effect, Grant, Identity, PolicyError, check_condition, compile_policy, decide, limits, visible
from mcp_acl.policy.narrowing import NARROWING_TYPE, Narrowing, narrowing_entry, narrowing_from_claim, parse_details
from tests.policy.test_properties import (
    ARGS_CONDITIONS,
    ARGS_FREE_CONDITIONS,
    ERRORING,
    EXAMPLES,
    GLOBS,
    KINDS,
    NOW,
    arguments,
    client_sets,
    grant_lists,
    identities,
    memberships,
    targets,
)

# Each condition compiled once before any example: the CEL compiler's first use draws from `random`,
# which Hypothesis refuses inside a strategy (the test then failed whenever it ran first).
for _condition in (ERRORING,) + ARGS_FREE_CONDITIONS + ARGS_CONDITIONS:
    narrowing_entry(["tool:a"], _condition)

entries = st.builds(
    lambda kind_globs, condition: narrowing_entry([f"{k}:{g}" for k, g in kind_globs], condition),
    st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(GLOBS)), min_size=1, max_size=3),
    st.sampled_from((None, ERRORING) + ARGS_FREE_CONDITIONS + ARGS_CONDITIONS),
)
narrowings = st.builds(lambda es: Narrowing(tuple(es)), st.lists(entries, max_size=3))


def _policy(grants, members, clients):
    return compile_policy(1, grants, members, clients)


@EXAMPLES
@given(grant_lists, identities, narrowings, targets, arguments, memberships, client_sets)
def test_a_narrowing_never_allows_what_the_base_denies(grants, identity, narrowing, target, args, members, clients):
    policy = _policy(grants, members, clients)
    base = decide(policy, identity, target, args, NOW)
    narrowed = decide(policy, replace(identity, narrowing=narrowing), target, args, NOW)
    if narrowed.allowed:
        assert base.allowed and narrowed.grant_id == base.grant_id
    if not base.allowed:
        assert (narrowed.allowed, narrowed.reason, narrowed.grant_id) == (False, base.reason, base.grant_id)


@EXAMPLES
@given(grant_lists, identities, narrowings, targets, memberships, client_sets)
def test_a_narrowing_never_lists_what_the_base_hides(grants, identity, narrowing, target, members, clients):
    policy = _policy(grants, members, clients)
    if visible(policy, replace(identity, narrowing=narrowing), target, NOW):
        assert visible(policy, identity, target, NOW)


@EXAMPLES
@given(grant_lists, identities, narrowings, narrowings, targets, arguments, memberships, client_sets)
def test_narrowing_further_never_widens(grants, identity, first, second, target, args, members, clients):
    # Two entries lists as one narrowing allow at most what either would (the union of its entries).
    policy = _policy(grants, members, clients)
    both = Narrowing(first.entries + second.entries)
    if decide(policy, replace(identity, narrowing=first), target, args, NOW).allowed:
        assert decide(policy, replace(identity, narrowing=both), target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_an_empty_or_unreadable_narrowing_allows_nothing(grants, identity, target, args, members, clients):
    policy = _policy(grants, members, clients)
    for narrowing in (Narrowing(()), Narrowing((), problem="broken")):
        narrowed = replace(identity, narrowing=narrowing)
        assert not decide(policy, narrowed, target, args, NOW).allowed
        assert not visible(policy, narrowed, target, NOW)


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_a_narrowing_to_everything_changes_no_decision(grants, identity, target, args, members, clients):
    policy = _policy(grants, members, clients)
    everything = Narrowing((narrowing_entry(["tool:*", "prompt:*", "resource:*"]),))
    base = decide(policy, identity, target, args, NOW)
    narrowed = decide(policy, replace(identity, narrowing=everything), target, args, NOW)
    assert (narrowed.allowed, narrowed.reason, narrowed.grant_id) == (base.allowed, base.reason, base.grant_id)


ALICE_READS = [
    Grant(1, "user:alice", Effect.ALLOW, "tool:files.*"),
    Grant(2, "user:alice", Effect.ALLOW, "prompt:access-policy"),
    Grant(3, "user:alice", Effect.DENY, "tool:files.read", 'args.path.startsWith("hr/")'),
]


def _alice(narrowing):
    return Identity("alice", "agent", narrowing=narrowing)


def test_a_call_outside_the_narrowing_is_refused_saying_the_token_was_narrowed():
    policy = compile_policy(1, ALICE_READS)
    narrowing = parse_details([{"type": NARROWING_TYPE, "targets": ["tool:files.read"],
                                "condition": 'args.path.startsWith("reports/q3")'}])
    alice = _alice(narrowing)
    assert decide(policy, alice, "tool:files.read", {"path": "reports/q3/a.md"}, NOW).allowed
    outside = decide(policy, alice, "tool:files.read", {"path": "reports/q4/a.md"}, NOW)
    assert not outside.allowed and "narrowed" in outside.reason and "does not hold" in outside.reason
    other = decide(policy, alice, "tool:files.write", {"path": "reports/q3/a.md"}, NOW)
    assert not other.allowed and "outside what this token was narrowed to" in other.reason
    # The base deny still wins inside the narrowing, with its own reason.
    hr = decide(policy, _alice(parse_details([{"type": NARROWING_TYPE, "targets": ["tool:*"]}])), "tool:files.read",
                {"path": "hr/x"}, NOW)
    assert not hr.allowed and hr.grant_id == 3
    assert visible(policy, alice, "tool:files.read", NOW) and not visible(policy, alice, "tool:files.write", NOW)
    # The access-policy prompt answers to the base policy alone.
    assert visible(policy, alice, "prompt:access-policy", NOW)
    assert decide(policy, alice, "prompt:access-policy", {}, NOW).allowed
    assert any("narrowed" in text for text in limits(policy, alice, "tool:files.read", NOW))


def test_a_narrowing_condition_on_the_user_is_decided_without_args():
    policy = compile_policy(1, ALICE_READS)
    bob_only = _alice(parse_details([{"type": NARROWING_TYPE, "targets": ["tool:files.read"], "condition": 'user.sub == "bob"'}]))
    assert not visible(policy, bob_only, "tool:files.read", NOW)


@pytest.mark.parametrize(
    "details, problem",
    [
        ({}, "non-empty JSON array"),
        ([], "non-empty JSON array"),
        (["x"], "not an object"),
        ([{"type": "payment_initiation", "targets": ["tool:a"]}], "only 'mcp-acl-narrowing'"),
        ([{"type": NARROWING_TYPE}], "targets must be a list"),
        ([{"type": NARROWING_TYPE, "targets": []}], "at least one target"),
        ([{"type": NARROWING_TYPE, "targets": ["files.read"]}], "needs a kind"),
        ([{"type": NARROWING_TYPE, "targets": ["tool:a"], "actions": ["x"]}], "unknown field(s) actions"),
        ([{"type": NARROWING_TYPE, "targets": ["tool:a"], "condition": "args.path.startsWith("}], "does not compile"),
        ([{"type": NARROWING_TYPE, "targets": ["tool:a"], "condition": 'args.path.startswith("x")'}], "did you mean"),
        ([{"type": NARROWING_TYPE, "targets": ["tool:a"], "condition": "secret == 1"}], "unknown variable"),
    ],
)
def test_malformed_details_are_refused(details, problem):
    with pytest.raises(PolicyError) as raised:
        parse_details(details, check=check_condition)
    assert problem in str(raised.value)


def test_a_claim_is_read_fail_closed():
    assert narrowing_from_claim(None) is None
    assert narrowing_from_claim([{"type": "someone-elses"}]) is None
    assert narrowing_from_claim("tool:a").problem
    assert narrowing_from_claim([{"type": NARROWING_TYPE, "targets": ["nonsense"]}]).problem
    read = narrowing_from_claim([{"type": NARROWING_TYPE, "targets": ["tool:a"], "condition": "args.n > 1"}])
    assert read == Narrowing((narrowing_entry(["tool:a"], "args.n > 1"),))
    assert read.as_details() == [{"type": NARROWING_TYPE, "targets": ["tool:a"], "condition": "args.n > 1"}]


def test_replay_skips_a_narrowed_tokens_refusals_but_not_the_policys():
    # Audit rows keep no narrowing: a refusal by the token is not the policy's answer to decide again.
    from types import SimpleNamespace

    from mcp_acl.audit.replay import is_policy_answer

    policy = compile_policy(1, ALICE_READS)
    alice = _alice(parse_details([{"type": NARROWING_TYPE, "targets": ["tool:files.read"]}]))
    unreadable = _alice(narrowing_from_claim("not a list"))
    reports = {"path": "reports/a.md"}
    assert decide(policy, Identity("alice", "agent"), "tool:files.read", reports, NOW).allowed
    for refused in (decide(policy, alice, "tool:files.write", reports, NOW), decide(policy, unreadable, "tool:files.read", reports, NOW)):
        assert not refused.allowed and "narrow" in refused.reason
        assert not is_policy_answer(SimpleNamespace(target=refused_target(refused), reason=refused.reason))
    base = decide(policy, Identity("alice", "agent"), "tool:files.read", {"path": "hr/x"}, NOW)
    assert not base.allowed and is_policy_answer(SimpleNamespace(target="tool:files.read", reason=base.reason))


def refused_target(decision) -> str:
    return decision.reason.split(" ", 1)[0]
