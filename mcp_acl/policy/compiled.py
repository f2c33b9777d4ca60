"""The policy of one revision, compiled into an index for fast decisions.

Grants are indexed by principal, then by target kind, then by exact name,
with wildcard patterns kept in a short list beside the exact names. A
decision therefore touches only the grants of the caller's own principals
that can match the target's kind, not the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mcp_acl.policy.conditions import Condition, compile_condition
from mcp_acl.policy.model import Grant, Identity, PolicyError
from mcp_acl.policy.names import TargetPattern, parse_principal, parse_target_pattern


@dataclass(frozen=True, slots=True)
class CompiledGrant:
    """A grant with its target pattern and condition compiled once."""

    grant: Grant
    pattern: TargetPattern
    condition: Condition | None

    def live(self, now: datetime) -> bool:
        """False once the grant's expiry has passed."""
        return self.grant.expires_at is None or now < self.grant.expires_at


@dataclass(slots=True)
class _Bucket:
    exact: dict[str, list[CompiledGrant]] = field(default_factory=dict)
    wild: list[CompiledGrant] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the policy needs to know about a registered client."""

    client_id: str
    restricted: bool


class CompiledPolicy:
    """Grants, memberships and clients of one revision, ready for `decide`."""

    def __init__(
        self,
        revision: int,
        grants: Iterable[CompiledGrant],
        memberships: Mapping[str, frozenset[str]],
        clients: Mapping[str, ClientInfo],
        disabled_users: frozenset[str] = frozenset(),
    ) -> None:
        self.revision = revision
        self.memberships = dict(memberships)
        self.clients = dict(clients)
        self.disabled_users = disabled_users
        self._index: dict[str, dict[str, _Bucket]] = {}
        self.grant_count = 0
        for cg in sorted(grants, key=lambda g: g.grant.id):
            bucket = self._index.setdefault(cg.grant.principal, {}).setdefault(
                cg.pattern.kind, _Bucket()
            )
            if cg.pattern.exact:
                bucket.exact.setdefault(cg.pattern.name, []).append(cg)
            else:
                bucket.wild.append(cg)
            self.grant_count += 1

    def matching(self, principal: str, kind: str, name: str) -> Iterator[CompiledGrant]:
        """Grants of `principal` whose pattern covers the target `kind:name`."""
        bucket = self._index.get(principal, {}).get(kind)
        if bucket is None:
            return
        yield from bucket.exact.get(name, ())
        for cg in bucket.wild:
            if cg.pattern.matches_name(name):
                yield cg

    def grants_of(self, principal: str, kind: str) -> Iterator[CompiledGrant]:
        """Every grant of `principal` on targets of `kind`."""
        bucket = self._index.get(principal, {}).get(kind)
        if bucket is None:
            return
        for grants in bucket.exact.values():
            yield from grants
        yield from bucket.wild

    def roles_of(self, identity: Identity) -> frozenset[str]:
        """The identity's roles: stored memberships plus those its token's claim mapped."""
        if identity.subject is None:
            return frozenset()
        return self.memberships.get(identity.subject, frozenset()) | identity.roles

    def is_restricted(self, client_id: str | None) -> bool:
        """True when the client is registered as restricted (a delegation ceiling)."""
        info = self.clients.get(client_id) if client_id else None
        return bool(info and info.restricted)


def compile_grant(grant: Grant) -> CompiledGrant:
    """Validate and compile one grant; raise PolicyError naming the grant if it is broken."""
    try:
        parse_principal(grant.principal)
        pattern = parse_target_pattern(grant.target)
        condition = compile_condition(grant.condition) if grant.condition else None
        if grant.expires_at is not None and grant.expires_at.tzinfo is None:
            raise PolicyError("the expiry has no timezone")
    except PolicyError as exc:
        raise PolicyError(f"grant #{grant.id}: {exc}") from exc
    return CompiledGrant(grant, pattern, condition)


def compile_policy(
    revision: int,
    grants: Iterable[Grant],
    memberships: Mapping[str, Iterable[str]] | None = None,
    clients: Iterable[ClientInfo] = (),
    disabled_users: Iterable[str] = (),
) -> CompiledPolicy:
    """Compile a whole policy. A broken grant raises: the caller then denies everything."""
    return CompiledPolicy(
        revision=revision,
        grants=[compile_grant(g) for g in grants],
        memberships={u: frozenset(r) for u, r in (memberships or {}).items()},
        clients={c.client_id: c for c in clients},
        disabled_users=frozenset(disabled_users),
    )
