"""needs_args: a call is decided without its arguments only when no arguments could change the answer.

Random policies from the decision properties' universe (conditions over
args, over user/client/now, erroring ones, expiries): whenever
`decide_without_args` answers, every set of arguments gets that answer
from decide(); and a policy with no condition over args never needs them.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide
from mcp_acl.policy.replay import decide_without_args, needs_args
from tests.policy.test_properties import (
    EXAMPLES, NOW, args_free_grant_lists, arguments, client_sets, grant_lists, identities, memberships, targets,
)

several_arguments = st.lists(arguments, min_size=1, max_size=6)


@EXAMPLES
@given(grant_lists, identities, targets, several_arguments, memberships, client_sets)
def test_an_answer_without_arguments_is_the_answer_for_any_arguments(grants, identity, target, argsets, members, clients):
    policy = compile_policy(1, grants, members, clients)
    answer = decide_without_args(policy, identity, target, NOW)
    if answer is None:
        return
    for args in argsets:
        assert decide(policy, identity, target, args, NOW).allowed == answer.allowed, args


@EXAMPLES
@given(args_free_grant_lists, identities, targets, memberships, client_sets)
def test_a_policy_without_conditions_over_args_never_needs_them(grants, identity, target, members, clients):
    assert not needs_args(compile_policy(1, grants, members, clients), identity, target, NOW)


def _policy(*grants: Grant):
    return compile_policy(1, grants, {"alice": frozenset({"analyst"})}, ())


ALICE = Identity("alice")
READ_REPORTS = Grant(1, "role:analyst", Effect.ALLOW, "tool:files.read", 'args.path.startsWith("reports/")')


def test_an_allow_over_args_needs_them():
    assert needs_args(_policy(READ_REPORTS), ALICE, "tool:files.read", NOW)


def test_an_unconditional_deny_decides_whatever_the_arguments():
    deny = Grant(2, "user:alice", Effect.DENY, "tool:files.*")
    answer = decide_without_args(_policy(READ_REPORTS, deny), ALICE, "tool:files.read", NOW)
    assert answer is not None and not answer.allowed and answer.grant == deny


def test_an_unconditional_allow_beside_an_allow_over_args_decides():
    allow = Grant(2, "user:alice", Effect.ALLOW, "tool:files.*")
    answer = decide_without_args(_policy(READ_REPORTS, allow), ALICE, "tool:files.read", NOW)
    assert answer is not None and answer.allowed


def test_a_deny_over_args_with_no_allow_is_a_deny():
    deny = Grant(1, "user:alice", Effect.DENY, "tool:files.read", "args.size > 10")
    answer = decide_without_args(_policy(deny), ALICE, "tool:files.read", NOW)
    assert answer is not None and not answer.allowed


def test_a_deny_over_args_beside_an_allow_needs_them():
    deny = Grant(1, "user:alice", Effect.DENY, "tool:files.read", "args.size > 10")
    allow = Grant(2, "user:alice", Effect.ALLOW, "tool:files.read")
    assert needs_args(_policy(deny, allow), ALICE, "tool:files.read", NOW)
