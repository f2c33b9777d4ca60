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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcp_acl.policy.compiled import CompiledGrant, CompiledPolicy
from mcp_acl.policy.conditions import ConditionError
from mcp_acl.policy.model import Decision, Effect, Identity, PolicyError
from mcp_acl.policy.names import parse_target


@dataclass(frozen=True, slots=True)
class _Side:
    who: str
    principals: tuple[str, ...]


def _sides(policy: CompiledPolicy, identity: Identity) -> list[_Side]:
    client = f"client:{identity.client_id}" if identity.client_id else None
    if identity.is_service:
        return [_Side(f"client {identity.client_id}", (client,))] if client else []
    roles = sorted(policy.roles_of(identity))
    sides = [_Side(f"user {identity.subject}", (f"user:{identity.subject}", *(f"role:{r}" for r in roles)))]
    if client and policy.is_restricted(identity.client_id):
        sides.append(_Side(f"the restricted client {identity.client_id}", (client,)))
    return sides


def condition_context(
    policy: CompiledPolicy, identity: Identity, args: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The variables a grant condition sees."""
    user = None
    if identity.subject is not None:
        user = {"sub": identity.subject, "roles": sorted(policy.roles_of(identity))}
    client = None
    if identity.client_id is not None:
        client = {"id": identity.client_id, "restricted": policy.is_restricted(identity.client_id)}
    return {"args": args if args is not None else {}, "user": user, "client": client, "now": now}


def _matching(policy: CompiledPolicy, side: _Side, kind: str, name: str, now: datetime) -> list[CompiledGrant]:
    found = [cg for p in side.principals for cg in policy.matching(p, kind, name) if cg.live(now)]
    # Lowest id first, so the deciding grant never depends on storage order.
    found.sort(key=lambda cg: cg.grant.id)
    return found


def _decide_side(
    policy: CompiledPolicy, side: _Side, target: str, kind: str, name: str,
    context: dict[str, Any], now: datetime,
) -> Decision:
    grants = _matching(policy, side, kind, name, now)
    considered = tuple(cg.grant.id for cg in grants)
    rev = policy.revision
    for cg in grants:
        if cg.grant.effect is not Effect.DENY:
            continue
        if cg.condition is None:
            return Decision(False, f"{target} is denied to {side.who} by grant #{cg.grant.id}", cg.grant, rev, considered)
        try:
            holds = cg.condition.holds(context)
        except ConditionError as exc:
            return Decision(False, f"{target} is denied to {side.who}: the condition of deny grant #{cg.grant.id} could not be evaluated ({exc}), so it counts as holding", cg.grant, rev, considered)
        if holds:
            return Decision(False, f"{target} is denied to {side.who} by grant #{cg.grant.id} because {cg.condition.source}", cg.grant, rev, considered)
    unmet = None
    for cg in grants:
        if cg.grant.effect is not Effect.ALLOW:
            continue
        if cg.condition is None:
            return Decision(True, f"{target} is allowed to {side.who} by grant #{cg.grant.id}", cg.grant, rev, considered)
        try:
            holds = cg.condition.holds(context)
        except ConditionError as exc:
            unmet = unmet or (cg, f"its condition could not be evaluated ({exc})")
            continue
        if holds:
            return Decision(True, f"{target} is allowed to {side.who} by grant #{cg.grant.id} because {cg.condition.source}", cg.grant, rev, considered)
        unmet = unmet or (cg, f"its condition {cg.condition.source} does not hold for these arguments")
    if unmet is not None:
        cg, why = unmet
        return Decision(False, f"{target} is not allowed to {side.who}: grant #{cg.grant.id} would allow it but {why}", cg.grant, rev, considered)
    return Decision(False, f"no grant allows {side.who} to use {target}", None, rev, considered)


def decide(
    policy: CompiledPolicy,
    identity: Identity,
    target: str,
    args: dict[str, Any] | None,
    now: datetime,
) -> Decision:
    """Decide one invocation. Never raises for bad input: it denies, saying why."""
    try:
        kind, name = parse_target(target)
    except PolicyError as exc:
        return Decision(False, f"malformed target: {exc}", None, policy.revision)
    if now.tzinfo is None:
        # Expiries are timezone-aware; a naive clock cannot be compared with them.
        return Decision(False, "the decision time has no timezone", None, policy.revision)
    if identity.subject is not None and identity.subject in policy.disabled_users:
        return Decision(False, f"user {identity.subject} is disabled", None, policy.revision)
    sides = _sides(policy, identity)
    if not sides:
        return Decision(False, "the caller has neither a user nor a client", None, policy.revision)
    if args is not None and not isinstance(args, dict):
        return Decision(False, "the arguments are not an object", None, policy.revision)
    context = condition_context(policy, identity, args, now)
    first = None
    for side in sides:
        answer = _decide_side(policy, side, target, kind, name, context, now)
        if not answer.allowed:
            return answer
        first = first or answer
    return first


def _side_may_list(policy: CompiledPolicy, side: _Side, kind: str, name: str, context: dict[str, Any], now: datetime) -> bool:
    allowed = False
    for cg in _matching(policy, side, kind, name, now):
        cond = cg.condition
        if cg.grant.effect is Effect.DENY:
            # Only a deny that holds whatever the arguments hides the target;
            # an error there counts as holding (fail closed).
            if cond is None:
                return False
            if not cond.uses_args:
                try:
                    if cond.holds(context):
                        return False
                except ConditionError:
                    return False
        elif not allowed:
            if cond is None or cond.uses_args:
                allowed = True  # some arguments could satisfy it
            else:
                try:
                    allowed = cond.holds(context)
                except ConditionError:
                    pass
    return allowed


def visible(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> bool:
    """May `target` be listed to `identity`? True only if some call to it could be allowed."""
    try:
        kind, name = parse_target(target)
    except PolicyError:
        return False
    if now.tzinfo is None:
        return False
    if identity.subject is not None and identity.subject in policy.disabled_users:
        return False
    sides = _sides(policy, identity)
    if not sides:
        return False
    context = condition_context(policy, identity, None, now)
    return all(_side_may_list(policy, s, kind, name, context, now) for s in sides)


def limits(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> list[str]:
    """What the allowing grants say about their limits (notes, else conditions), for the model."""
    try:
        kind, name = parse_target(target)
    except PolicyError:
        return []
    texts: list[str] = []
    for side in _sides(policy, identity):
        for cg in _matching(policy, side, kind, name, now):
            text = cg.grant.limit_text() if cg.grant.effect is Effect.ALLOW else None
            if text and text not in texts:
                texts.append(text)
    return texts
