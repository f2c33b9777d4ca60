"""The caller of a decision, prepared once per identity and revision.

A decision asks, on one or two sides, which grants cover the target: the
subject side (the user and each of its roles) and, for a restricted client,
the client side; a service token (no user) has the client side alone.
Preparing a caller resolves its roles, its principals' index entries and its
condition variables once, so that a decision is a few dict lookups.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from mcp_acl.policy.model import Identity

if TYPE_CHECKING:
    from mcp_acl.policy.compiled import CompiledGrant, CompiledPolicy

_BY_ID = attrgetter("id")


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a decision: who it speaks for and its principals' grants."""

    who: str
    principals: tuple[str, ...]
    exact: Mapping[str, Mapping[str, list[CompiledGrant]]]  # the policy's exact index
    # The principals' wildcard grants merged, lowest id first, and their
    # distinct literal leads, so one C-level startswith() rules most out.
    wild: tuple[CompiledGrant, ...]
    leads: tuple[str, ...]

    def matching(self, target: str, now: datetime) -> list[CompiledGrant]:
        """The live grants of this side whose pattern covers `target`, lowest id first."""
        found: list[CompiledGrant] = []
        by_principal = self.exact.get(target)
        if by_principal:
            for principal in self.principals:
                hits = by_principal.get(principal)
                if hits:
                    found += hits
        if self.leads and target.startswith(self.leads):
            for cg in self.wild:  # CompiledGrant.covers(), inlined: this is the hot loop
                if target.startswith(cg.lead) and (cg.regex is None or cg.regex.fullmatch(target)):
                    found.append(cg)
        if found:
            found = [cg for cg in found if cg.expires_at is None or now < cg.expires_at]
            if len(found) > 1:
                # Lowest id first, so the deciding grant never depends on storage order.
                found.sort(key=_BY_ID)
        return found


@dataclass(frozen=True, slots=True)
class Caller:
    """An identity as the policy of one revision sees it."""

    # Why every decision for this identity is a deny (disabled user, nobody), if so.
    refusal: str | None
    sides: tuple[Side, ...]
    # The `user` and `client` condition variables; shared, so never handed out.
    user: dict[str, Any] | None
    client: dict[str, Any] | None


def caller_variables(policy: CompiledPolicy, identity: Identity) -> tuple[dict | None, dict | None]:
    """The `user` ({sub, roles}) and `client` ({id, restricted}) condition variables, fresh."""
    user = None
    if identity.subject is not None:
        user = {"sub": identity.subject, "roles": sorted(policy.roles_of(identity))}
    client = None
    if identity.client_id is not None:
        client = {"id": identity.client_id, "restricted": policy.is_restricted(identity.client_id)}
    return user, client


def _side(policy: CompiledPolicy, who: str, principals: tuple[str, ...]) -> Side:
    # Interned like the index's keys, so the dict lookups compare by identity.
    principals = tuple(map(sys.intern, principals))
    wild = sorted((cg for p in principals for cg in policy.wildcard_grants(p)), key=_BY_ID)
    leads = tuple(dict.fromkeys(cg.lead for cg in wild))
    return Side(who, principals, policy.exact_index, tuple(wild), leads)


def prepare_caller(policy: CompiledPolicy, identity: Identity) -> Caller:
    """Resolve the identity's sides, principals and variables against `policy`."""
    client = f"client:{identity.client_id}" if identity.client_id else None
    sides: list[Side] = []
    if identity.is_service:
        if client:
            sides.append(_side(policy, f"client {identity.client_id}", (client,)))
    else:
        roles = sorted(policy.roles_of(identity))
        subject = (f"user:{identity.subject}", *(f"role:{r}" for r in roles))
        sides.append(_side(policy, f"user {identity.subject}", subject))
        if client and policy.is_restricted(identity.client_id):
            sides.append(_side(policy, f"the restricted client {identity.client_id}", (client,)))
    refusal = None
    if identity.subject is not None and identity.subject in policy.disabled_users:
        refusal = f"user {identity.subject} is disabled"
    elif not sides:
        refusal = "the caller has neither a user nor a client"
    user, client_vars = caller_variables(policy, identity)
    return Caller(refusal, tuple(sides), user, client_vars)
