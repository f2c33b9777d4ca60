"""The caller of a decision, prepared once per identity and revision.

A decision asks, on one or two sides, which grants cover the target: the
subject side (the user and each of its roles) and, for a restricted client,
the client side; a service token (no user) has the client side alone.
Preparing a caller resolves its roles and principals and builds its
condition variables once, so that a decision is a few dict lookups.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from mcp_acl.policy.model import Identity

if TYPE_CHECKING:
    from mcp_acl.policy.compiled import CompiledGrant, CompiledPolicy

_BY_ID = attrgetter("id")


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a decision: who it speaks for, its principals and the policy's index."""

    who: str
    principals: tuple[str, ...]
    # The policy's own indexes (see CompiledPolicy), shared by every side.
    exact: Mapping[str, Mapping[str, list[CompiledGrant]]] = field(repr=False)
    wild: Mapping[str, Mapping[str, list[CompiledGrant]]] = field(repr=False)
    lead_lengths: Mapping[str, tuple[int, ...]] = field(repr=False)

    def matching(self, target: str, now: datetime) -> list[CompiledGrant]:
        """The live grants of this side whose pattern covers `target`, lowest id first."""
        return self.covering(target, self.exact.get(target), now)

    def covering(
        self, target: str, by_principal: Mapping[str, list[CompiledGrant]] | None, now: datetime
    ) -> list[CompiledGrant]:
        """matching(), given the exact index's entry for `target` (None when it has none)."""
        found: list[CompiledGrant] = []
        if by_principal:
            for principal in self.principals:
                hits = by_principal.get(principal)
                if hits:
                    found += hits
        size = len(target)
        for length in self.lead_lengths.get(target[0], ()):
            if length > size:
                break
            by_principal = self.wild.get(target[:length])
            if by_principal:
                for principal in self.principals:
                    for cg in by_principal.get(principal, ()):
                        if cg.regex is None or cg.regex.fullmatch(target):
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

    identity: Identity
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
    return Side(who, principals, policy.exact_index, policy.wildcard_index, policy.lead_lengths)


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
    return Caller(identity, refusal, tuple(sides), user, client_vars)
