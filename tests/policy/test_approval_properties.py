"""Approvals never allow what the base semantics deny (Hypothesis, over the universe of test_properties).

A policy is drawn; then some of its allow grants are marked as needing
approval. The decision's allowed bit must be exactly the one without the
marks (an approval only holds an allowed call, it never changes the
answer), a call needing approval must be allowed by the base semantics,
and when it needs approval the deciding grant is one of the marked ones.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from mcp_acl.policy import Effect, decide, visible
from mcp_acl.policy.approval import ADMINS, may_approve, needs_approval

from test_properties import EXAMPLES, NOW, _policy, arguments, client_sets, grant_lists, identities, memberships, targets


def _marked(grants, picks):
    return [
        replace(g, approval_by=("role:r1" if pick == 2 else ADMINS)) if pick and g.effect is Effect.ALLOW else g
        for g, pick in zip(grants, picks)
    ]


marks = st.lists(st.integers(0, 2), min_size=12, max_size=12)


@EXAMPLES
@given(grant_lists, marks, identities, targets, arguments, memberships, client_sets)
def test_approval_marks_never_change_the_answer(grants, picks, identity, target, args, members, clients):
    base = decide(_policy(grants, members, clients), identity, target, args, NOW)
    marked_grants = _marked(grants, picks)
    marked_policy = _policy(marked_grants, members, clients)
    held = decide(marked_policy, identity, target, args, NOW)
    assert held.allowed == base.allowed
    if needs_approval(held):
        # The grant that holds the call is one the test marked, in the policy decided on.
        assert held.grant in [g for g in marked_grants if g.approval_by is not None]
    # What is listed does not change either: a held tool is shown, with its limits.
    assert visible(marked_policy, identity, target, NOW) == visible(_policy(grants, members, clients), identity, target, NOW)


@EXAMPLES
@given(grant_lists, marks, identities, targets, arguments, memberships, client_sets)
def test_an_allow_that_needs_no_approval_is_preferred(grants, picks, identity, target, args, members, clients):
    # Marking more grants can only add holds: if the call needs no approval with the marks,
    # every side found an allow without one, so it needs none with fewer marks either.
    marked = decide(_policy(_marked(grants, picks), members, clients), identity, target, args, NOW)
    fewer = decide(_policy(_marked(grants, [p if i % 2 else 0 for i, p in enumerate(picks)]), members, clients), identity, target, args, NOW)
    if marked.allowed and not needs_approval(marked):
        assert not needs_approval(fewer)


@EXAMPLES
@given(st.sampled_from(("alice", "bob", None)), st.frozensets(st.sampled_from(("r1", "r2")), max_size=2), st.booleans())
def test_who_may_approve(user, roles, admin):
    assert may_approve(ADMINS, user, roles, admin=admin) == admin
    assert may_approve("role:r1", user, roles, admin=admin) == ("r1" in roles)
    assert may_approve("user:alice,role:r2", user, roles, admin=admin) == (user == "alice" or "r2" in roles)
