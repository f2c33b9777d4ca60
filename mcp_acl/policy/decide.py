"""decide(): may this identity use this target, with these arguments, now?

The semantics, as a truth table per side (subject side: the user's and its
roles' grants; client side: the client's grants):

    matching live grants                          side says
    ------------------------------------------    ---------------------------
    a deny whose condition holds, has none,       deny  (deny overrides allow)
      or errors
    else an allow whose condition holds or        allow
      has none
    else (none, conditions false or erroring)     deny  (default deny)

A user's call is allowed when the subject side allows and, if the client is
restricted, the client side allows too. A service token (no user) is decided
by the client side alone. Every answer carries its reason and deciding grant.

Approvals (policy/approval.py) come after this table, never instead of it:
an allow whose deciding grant has `approval_by` is held by the gateway
until a person approves, denies or it times out, and decided again at
release. A side prefers an allow that needs no approval; the answer names
a deciding grant that needs approval if either side's does.

Quotas (`--limit`, `--rate`; policy/quotas.py) are a step after this one,
never an input to it: an allow here may still be refused by a used-up
quota when the admission counts it, and a deny here is never counted.

A narrowed token (policy/narrowing.py) adds one more side after those: an
allow stands only if some narrowing entry covers the target and its
condition holds (an erroring condition counts as false); otherwise deny,
saying the token was narrowed. It can only turn an allow into a deny.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mcp_acl.policy.callers import Caller, Side, caller_variables
from mcp_acl.policy.compiled import CompiledGrant, CompiledPolicy
from mcp_acl.policy.conditions import ConditionError
from mcp_acl.policy.model import Decision, Identity, new_decision
from mcp_acl.policy.names import target_problem


def condition_context(
    policy: CompiledPolicy, identity: Identity, args: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The variables a grant condition sees."""
    user, client = caller_variables(policy, identity)
    return {"args": args if args is not None else {}, "user": user, "client": client, "now": now}


def _context(caller: Caller, args: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    # Built only when a matching grant has a condition; most decisions never need it.
    return {"args": args if args is not None else {}, "user": caller.user, "client": caller.client, "now": now}


def _decide_side(
    side: Side, target: str, grants: list[CompiledGrant], caller: Caller,
    args: dict[str, Any] | None, now: datetime, rev: int,
) -> Decision:
    who = side.who
    if not grants:
        return new_decision(False, f"no grant allows {who} to use {target}", None, rev, ())
    considered = tuple([cg.id for cg in grants])
    context = None
    for cg in grants:
        if not cg.deny:
            continue
        if cg.condition is None:
            return new_decision(False, f"{target} is denied to {who} by grant #{cg.id}", cg.grant, rev, considered)
        context = context or _context(caller, args, now)
        try:
            holds = cg.condition.holds(context)
        except ConditionError as exc:
            return new_decision(False, f"{target} is denied to {who}: the condition of deny grant #{cg.id} could not be evaluated ({exc}), so it counts as holding", cg.grant, rev, considered)
        if holds:
            return new_decision(False, f"{target} is denied to {who} by grant #{cg.id} because {cg.condition.source}", cg.grant, rev, considered)
    unmet = None
    # The first allow that holds but needs a person's approval; one that needs none wins over it.
    held = None
    for cg in grants:
        if cg.deny:
            continue
        if cg.condition is None:
            allowed = new_decision(True, f"{target} is allowed to {who} by grant #{cg.id}", cg.grant, rev, considered)
            if cg.grant.approval_by is None:
                return allowed
            held = held or allowed
            continue
        context = context or _context(caller, args, now)
        try:
            holds = cg.condition.holds(context)
        except ConditionError as exc:
            unmet = unmet or (cg, f"its condition could not be evaluated ({exc})")
            continue
        if holds:
            allowed = new_decision(True, f"{target} is allowed to {who} by grant #{cg.id} because {cg.condition.source}", cg.grant, rev, considered)
            if cg.grant.approval_by is None:
                return allowed
            held = held or allowed
            continue
        unmet = unmet or (cg, f"its condition {cg.condition.source} does not hold for these arguments")
    if held is not None:
        return held
    if unmet is not None:
        cg, why = unmet
        return new_decision(False, f"{target} is not allowed to {who}: grant #{cg.id} would allow it but {why}", cg.grant, rev, considered)
    return new_decision(False, f"no grant allows {who} to use {target}", None, rev, considered)


def _refusal(target: Any, now: datetime, indexed: bool) -> str | None:
    # A target the exact index holds is well formed: it was parsed as a pattern
    # without wildcards when the policy was compiled.
    if not indexed:
        if not isinstance(target, str):
            return "malformed target: the target is not text"
        problem = target_problem(target)
        if problem is not None:
            return f"malformed target: {problem}"
    if now.tzinfo is None:
        # Expiries are timezone-aware; a naive clock cannot be compared with them.
        return "the decision time has no timezone"
    return None


def decide(
    policy: CompiledPolicy,
    identity: Identity,
    target: str,
    args: dict[str, Any] | None,
    now: datetime,
) -> Decision:
    """Decide one invocation. Never raises for bad input: it denies, saying why."""
    rev = policy.revision
    exact = policy.exact_index.get(target) if isinstance(target, str) else None
    if exact is None or now.tzinfo is None:
        refusal = _refusal(target, now, exact is not None)
        if refusal is not None:
            return new_decision(False, refusal, None, rev)
    caller = policy.caller(identity)
    if caller.refusal is not None:
        return new_decision(False, caller.refusal, None, rev)
    if args is not None and not isinstance(args, dict):
        return new_decision(False, "the arguments are not an object", None, rev)
    first = None
    for side in caller.sides:
        answer = _decide_side(side, target, side.covering(target, exact, now), caller, args, now, rev)
        if not answer.allowed:
            return answer
        if first is None or (answer.grant.approval_by is not None and first.grant.approval_by is None):
            first = answer  # the client side's grant needing approval is not lost behind the user's
    if identity.narrowing is not None and first is not None:
        refused = identity.narrowing.refusal(target, _context(caller, args, now))
        if refused is not None:
            return new_decision(False, refused, None, rev, first.considered)
    return first


def _side_may_list(side: Side, target: str, caller: Caller, now: datetime) -> bool:
    allowed = False
    context = None
    for cg in side.matching(target, now):
        cond = cg.condition
        if cg.deny:
            # Only a deny that holds whatever the arguments hides the target;
            # an error there counts as holding (fail closed).
            if cond is None:
                return False
            if not cond.uses_args:
                context = context or _context(caller, None, now)
                try:
                    if cond.holds(context):
                        return False
                except ConditionError:
                    return False
        elif not allowed:
            if cond is None or cond.uses_args:
                allowed = True  # some arguments could satisfy it
            else:
                context = context or _context(caller, None, now)
                try:
                    allowed = cond.holds(context)
                except ConditionError:
                    pass
    return allowed


def visible(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> bool:
    """May `target` be listed to `identity`? True only if some call to it could be allowed."""
    if _refusal(target, now, False) is not None:
        return False
    caller = policy.caller(identity)
    if caller.refusal is not None:
        return False
    if not all(_side_may_list(side, target, caller, now) for side in caller.sides):
        return False
    return identity.narrowing is None or identity.narrowing.may_list(target, _context(caller, None, now))


def limits(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> list[str]:
    """What the allowing grants say about their limits (notes, else conditions), for the model."""
    if _refusal(target, now, False) is not None:
        return []
    texts: list[str] = []
    for side in policy.caller(identity).sides:
        for cg in side.matching(target, now):
            text = None if cg.deny else cg.grant.limit_text()
            if text and text not in texts:
                texts.append(text)
    if identity.narrowing is not None:
        texts += identity.narrowing.limit_texts(target)
    return texts
