"""Re-deciding a recorded call when its arguments are not known.

The audit log keeps a digest of each call's arguments, never the arguments.
A call can still be decided again when the answer cannot depend on them:
`needs_args` says whether it could, following decide()'s own order (deny
overrides allow, default deny, every side must allow). A condition that
reads `args` counts as "could go either way"; one that does not is
evaluated as decide() would, errors failing closed.

    side's matching live grants                         answer without args
    -------------------------------------------------   -------------------
    an unconditional deny, or a deny over user/client/   deny
      now that holds or errors
    else a deny over args, and an allow that could hold  unknown
    else a deny over args, and no allow that could hold  deny
    else an unconditional allow or one over user/client/ allow
      now that holds
    else an allow over args                              unknown
    else                                                 deny

The call is decided when some side surely denies, or every side surely
allows; otherwise it needs the arguments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mcp_acl.policy.callers import Caller, Side
from mcp_acl.policy.compiled import CompiledGrant, CompiledPolicy
from mcp_acl.policy.conditions import ConditionError
from mcp_acl.policy.decide import _refusal, decide
from mcp_acl.policy.model import Decision, Identity, new_decision

_ALLOW, _DENY, _UNKNOWN = "allow", "deny", "unknown"


def _holds_without_args(cg: CompiledGrant, context: dict[str, Any]) -> bool | None:
    """The condition's value when it does not read args (None when it does); errors raise."""
    if cg.condition is None:
        return True
    if cg.condition.uses_args:
        return None
    return cg.condition.holds(context)


def _side_without_args(side: Side, target: str, caller: Caller, now: datetime) -> tuple[str, CompiledGrant | None]:
    """This side's answer whatever the arguments (allow, deny or unknown), and the grant that makes it sure."""
    context = {"args": {}, "user": caller.user, "client": caller.client, "now": now}
    grants = side.matching(target, now)
    deny_unknown = False
    for cg in grants:
        if not cg.deny:
            continue
        try:
            holds = _holds_without_args(cg, context)
        except ConditionError:
            return _DENY, cg  # an erroring deny counts as holding
        if holds is None:
            deny_unknown = True
        elif holds:
            return _DENY, cg
    allow: tuple[str, CompiledGrant | None] = (_DENY, None)
    for cg in grants:
        if cg.deny:
            continue
        try:
            holds = _holds_without_args(cg, context)
        except ConditionError:
            continue  # an erroring allow counts as not holding
        if holds is None:
            allow = (_UNKNOWN, None)
        elif holds:
            allow = (_ALLOW, cg)
            break
    if deny_unknown:
        return (_DENY, None) if allow[0] == _DENY else (_UNKNOWN, None)
    return allow


def _answers(policy: CompiledPolicy, identity: Identity, target: str, now: datetime):
    caller = policy.caller(identity)
    return caller, [(side, *_side_without_args(side, target, caller, now)) for side in caller.sides]


def needs_args(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> bool:
    """True when decide()'s answer for this caller and target could depend on the arguments."""
    if _refusal(target, now, False) is not None or policy.caller(identity).refusal is not None:
        return False
    _, answers = _answers(policy, identity, target, now)
    kinds = [answer for _, answer, _ in answers]
    return _DENY not in kinds and _UNKNOWN in kinds


def decide_without_args(policy: CompiledPolicy, identity: Identity, target: str, now: datetime) -> Decision | None:
    """The decision for a call whose arguments are unknown, or None when it depends on them.

    Whether it allows is what decide() answers for any arguments. Its reason
    and grant name what makes the answer sure (which grant decide() names
    for particular arguments can depend on them).
    """
    if _refusal(target, now, False) is not None or policy.caller(identity).refusal is not None:
        return decide(policy, identity, target, {}, now)
    rev = policy.revision
    _, answers = _answers(policy, identity, target, now)
    for side, answer, cg in answers:
        if answer == _DENY:
            if cg is None:
                return new_decision(False, f"no grant allows {side.who} to use {target}, whatever the arguments", None, rev)
            return new_decision(False, f"{target} is denied to {side.who} by grant #{cg.id}, whatever the arguments", cg.grant, rev)
    if any(answer == _UNKNOWN for _, answer, _ in answers):
        return None
    side, _, cg = answers[0]
    return new_decision(True, f"{target} is allowed to {side.who} by grant #{cg.id}, whatever the arguments", cg.grant, rev)
