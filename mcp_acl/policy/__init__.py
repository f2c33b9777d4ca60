"""The pure decision core: grants, names, conditions, the compiled index, decide.

Nothing in this package performs I/O or reads the clock: callers pass the
grants, the identity, the arguments and `now` in, and get a `Decision` out.
"""

from mcp_acl.policy.compiled import CompiledPolicy, compile_policy
from mcp_acl.policy.condition_types import check_condition, condition_problem
from mcp_acl.policy.conditions import Condition, compile_condition
from mcp_acl.policy.decide import condition_context, decide, limits, visible
from mcp_acl.policy.model import Decision, Effect, Grant, Identity, PolicyError
from mcp_acl.policy.names import (
    Principal,
    TargetPattern,
    parse_principal,
    parse_target,
    parse_target_pattern,
)

__all__ = [
    "CompiledPolicy",
    "Condition",
    "Decision",
    "Effect",
    "Grant",
    "Identity",
    "PolicyError",
    "Principal",
    "TargetPattern",
    "check_condition",
    "compile_condition",
    "compile_policy",
    "condition_context",
    "condition_problem",
    "decide",
    "limits",
    "parse_principal",
    "parse_target",
    "parse_target_pattern",
    "visible",
]
