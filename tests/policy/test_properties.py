"""Properties of the decision semantics over random grant sets (Hypothesis).

The universe is deliberately tiny (two users, three roles, two clients, a
handful of names and globs) so random grants collide with random questions
often; conditions are drawn from a pool that holds, fails or errors
depending on the arguments and the identity.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide, visible
from mcp_acl.policy.compiled import ClientInfo
from mcp_acl.policy.conditions import ConditionError, compile_condition
from mcp_acl.policy.decide import condition_context

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
USERS = ("alice", "bob")
ROLES = ("r1", "r2", "r3")
CLIENTS = ("agent", "app")
PRINCIPALS = tuple(f"user:{u}" for u in USERS) + tuple(f"role:{r}" for r in ROLES) + tuple(
    f"client:{c}" for c in CLIENTS
)
NAMES = ("a", "b", "ab", "a.b", "a/b")
GLOBS = NAMES + ("*", "a*", "?", "a.*", "?b", "*b")
KINDS = ("tool", "prompt")
ARGS_FREE_CONDITIONS = (
    "true",
    "false",
    'user.sub == "alice"',          # errors for a service identity
    '"r1" in user.roles',
    "client.restricted",            # errors without a client
    'now < timestamp("2026-06-01T00:00:00Z")',
)
ARGS_CONDITIONS = (
    "args.n > 1",                   # errors when n is missing or not an int
    "args.flag",                    # errors when flag is missing or not a bool
    'has(args.n) && args.n == 2',
)
ERRORING = "args.never_given == 1"
EXPIRIES = (None, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
EXAMPLES = settings(max_examples=150, deadline=None)


def _grant_strategy(conditions):
    return st.builds(
        lambda principal, effect, kind, glob, when, expires: Grant(
            0, principal, effect, f"{kind}:{glob}", when, expires
        ),
        st.sampled_from(PRINCIPALS),
        st.sampled_from(list(Effect)),
        st.sampled_from(KINDS),
        st.sampled_from(GLOBS),
        st.sampled_from((None,) + conditions),
        st.sampled_from(EXPIRIES),
    )


def _numbered(grants, start=1) -> list[Grant]:
    return [replace(g, id=i) for i, g in enumerate(grants, start)]


grant_lists = st.lists(_grant_strategy(ARGS_FREE_CONDITIONS + ARGS_CONDITIONS), max_size=12).map(_numbered)
args_free_grant_lists = st.lists(_grant_strategy(ARGS_FREE_CONDITIONS), max_size=12).map(_numbered)
identities = st.builds(
    Identity,
    st.sampled_from((None,) + USERS),
    st.sampled_from((None,) + CLIENTS),
    st.frozensets(st.sampled_from(ROLES), max_size=2),
)
targets = st.builds(lambda kind, name: f"{kind}:{name}", st.sampled_from(KINDS), st.sampled_from(NAMES))
arguments = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {}, optional={"n": st.one_of(st.integers(0, 3), st.just("two")), "flag": st.one_of(st.booleans(), st.just(1))}
    ),
)
memberships = st.fixed_dictionaries({u: st.frozensets(st.sampled_from(ROLES), max_size=2) for u in USERS})
client_sets = st.lists(st.builds(ClientInfo, st.sampled_from(CLIENTS), st.booleans()), max_size=2, unique_by=lambda c: c.client_id)


def _policy(grants, members, clients):
    return compile_policy(1, grants, members, clients)


def _answer(policy, identity, target, args):
    d = decide(policy, identity, target, args, NOW)
    return d.allowed, d.grant_id, d.reason


def _own_principal(identity: Identity) -> str | None:
    if identity.subject is not None:
        return f"user:{identity.subject}"
    return f"client:{identity.client_id}" if identity.client_id else None


@EXAMPLES
@given(identities, targets, arguments, memberships, client_sets)
def test_no_grants_deny_everything(identity, target, args, members, clients):
    assert not decide(_policy([], members, clients), identity, target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_an_unconditional_deny_of_the_caller_always_wins(grants, identity, target, args, members, clients):
    principal = _own_principal(identity)
    if principal is None:
        return
    deny = Grant(len(grants) + 1, principal, Effect.DENY, f"{target.partition(':')[0]}:*")
    decision = decide(_policy(grants + [deny], members, clients), identity, target, args, NOW)
    assert not decision.allowed
    assert decision.grant is not None and decision.grant.effect is Effect.DENY


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets, st.randoms(use_true_random=False))
def test_grant_order_and_repeats_change_nothing(grants, identity, target, args, members, clients, rnd):
    before = _answer(_policy(grants, members, clients), identity, target, args)
    shuffled = grants + rnd.sample(grants, k=len(grants) // 2)
    rnd.shuffle(shuffled)
    assert _answer(_policy(shuffled, members, clients), identity, target, args) == before


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_copies_with_newer_ids_change_nothing(grants, identity, target, args, members, clients):
    before = _answer(_policy(grants, members, clients), identity, target, args)
    copies = [replace(g, id=g.id + len(grants)) for g in grants]
    assert _answer(_policy(grants + copies, members, clients), identity, target, args) == before


@EXAMPLES
@given(grant_lists, _grant_strategy(ARGS_FREE_CONDITIONS + ARGS_CONDITIONS), identities, targets, arguments,
       memberships, client_sets)
def test_adding_an_allow_never_turns_allow_into_deny(grants, extra, identity, target, args, members, clients):
    extra = replace(extra, id=len(grants) + 1, effect=Effect.ALLOW)
    if decide(_policy(grants, members, clients), identity, target, args, NOW).allowed:
        assert decide(_policy(grants + [extra], members, clients), identity, target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, _grant_strategy(ARGS_FREE_CONDITIONS + ARGS_CONDITIONS), identities, targets, arguments,
       memberships, client_sets)
def test_adding_a_deny_never_turns_deny_into_allow(grants, extra, identity, target, args, members, clients):
    extra = replace(extra, id=len(grants) + 1, effect=Effect.DENY)
    if not decide(_policy(grants, members, clients), identity, target, args, NOW).allowed:
        assert not decide(_policy(grants + [extra], members, clients), identity, target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, st.data(), identities, targets, arguments, memberships, client_sets)
def test_removing_an_allow_never_turns_deny_into_allow(grants, data, identity, target, args, members, clients):
    allows = [g for g in grants if g.effect is Effect.ALLOW]
    if not allows:
        return
    gone = data.draw(st.sampled_from(allows))
    if not decide(_policy(grants, members, clients), identity, target, args, NOW).allowed:
        rest = [g for g in grants if g is not gone]
        assert not decide(_policy(rest, members, clients), identity, target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_an_allow_is_decided_by_an_allow_whose_condition_held(grants, identity, target, args, members, clients):
    policy = _policy(grants, members, clients)
    decision = decide(policy, identity, target, args, NOW)
    if decision.allowed:
        assert decision.grant is not None and decision.grant.effect is Effect.ALLOW
        if decision.grant.condition:
            context = condition_context(policy, identity, args, NOW)
            assert compile_condition(decision.grant.condition).holds(context) is True


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_allows_whose_conditions_error_never_allow(grants, identity, target, args, members, clients):
    erroring = [replace(g, condition=ERRORING) if g.effect is Effect.ALLOW else g for g in grants]
    assert not decide(_policy(erroring, members, clients), identity, target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_a_deny_whose_condition_errors_acts_as_unconditional(grants, identity, target, args, members, clients):
    unconditional = [replace(g, condition=None) if g.effect is Effect.DENY else g for g in grants]
    erroring = [replace(g, condition=ERRORING) if g.effect is Effect.DENY else g for g in grants]
    first = decide(_policy(unconditional, members, clients), identity, target, args, NOW)
    second = decide(_policy(erroring, members, clients), identity, target, args, NOW)
    assert (first.allowed, first.grant_id) == (second.allowed, second.grant_id)


@EXAMPLES
@given(args_free_grant_lists, identities, targets, arguments, memberships, client_sets)
def test_visible_exactly_when_a_call_is_allowed_for_args_free_grants(grants, identity, target, args, members, clients):
    policy = _policy(grants, members, clients)
    assert visible(policy, identity, target, NOW) == decide(policy, identity, target, args, NOW).allowed


@EXAMPLES
@given(grant_lists, identities, targets, arguments, memberships, client_sets)
def test_an_allowed_call_is_always_visible(grants, identity, target, args, members, clients):
    policy = _policy(grants, members, clients)
    if decide(policy, identity, target, args, NOW).allowed:
        assert visible(policy, identity, target, NOW)


def test_erroring_condition_really_errors():
    # The properties above rely on ERRORING raising for every argument set they draw.
    try:
        compile_condition(ERRORING).holds({"args": {"n": 1}, "user": None, "client": None, "now": NOW})
    except ConditionError:
        return
    raise AssertionError(f"{ERRORING} evaluated without error")
