"""Approvals: which allowed calls wait for a person, and who that person may be.

A grant stored with `approval_by` (mcp-acl grant … --approval) still
allows exactly what it allowed before; the gateway only holds such a call
until someone named there approves it. Nothing here can turn a refusal
into an allow: `needs_approval` is only ever true of an allowed decision.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcp_acl.policy.model import Decision, PolicyError
from mcp_acl.policy.names import parse_principal

# The default approvers: whoever administers the store (the local CLI).
ADMINS = "admins"


def needs_approval(decision: Decision) -> bool:
    """True when an allowed decision's deciding grant asks for a person's approval first."""
    return decision.allowed and decision.grant is not None and decision.grant.approval_by is not None


def approval_spec(principals: Iterable[str]) -> str:
    """The stored `approval_by` text for these approvers (`role:lead,user:carol`), or ADMINS for none.

    Raises PolicyError for a principal that is not well formed or not a user or role.
    """
    names: list[str] = []
    for text in principals:
        who = parse_principal(text)
        if who.kind == "client":
            raise PolicyError(f"--approval-by {text}: a client cannot approve; name a user: or role:")
        if text not in names:
            names.append(text)
    return ",".join(names) if names else ADMINS


def approvers(spec: str) -> tuple[str, ...]:
    """The principals of a stored `approval_by` (empty for ADMINS)."""
    return () if spec == ADMINS else tuple(p for p in spec.split(",") if p)


def may_approve(spec: str, user: str | None, roles: Iterable[str], *, admin: bool) -> bool:
    """May `user` (holding `roles`) approve under `spec`? An administrator may approve ADMINS requests."""
    if spec == ADMINS:
        return admin
    held = {f"role:{r}" for r in roles}
    if user is not None:
        held.add(f"user:{user}")
    return any(p in held for p in approvers(spec))


def approvers_text(spec: str) -> str:
    """Who must approve, for people and models: `an administrator` or `role:lead or user:carol`."""
    named = approvers(spec)
    return " or ".join(named) if named else "an administrator"
