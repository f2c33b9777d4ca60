"""The policy of one revision, compiled into an index for fast decisions.

Exact-target grants are indexed by the whole target text (`tool:files.read`),
then by principal. Wildcard grants are indexed by their literal lead (the
text before the first wildcard, `tool:files.` for `tool:files.*`), then by
principal; a decision looks up each prefix of the target whose length is the
length of some lead. A decision therefore touches only the grants of the
caller's own principals that can cover the target, however large the policy.
"""

from __future__ import annotations

import re
import sys
from bisect import insort
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mcp_acl.policy.callers import Caller, prepare_caller
from mcp_acl.policy.conditions import Condition, compile_condition
from mcp_acl.policy.model import Effect, Grant, Identity, PolicyError
from mcp_acl.policy.names import TargetPattern, glob_regex, parse_principal, parse_target_pattern
from mcp_acl.policy.quotas import grant_quotas

# Prepared callers kept per policy; past this many the memo starts afresh, so
# a flood of distinct identities costs time, never unbounded memory.
CALLER_MEMO_SIZE = 16384


class CompiledGrant:
    """A grant with its target pattern and condition compiled once.

    The fields a decision reads on every match (id, deny, expiry, the
    pattern's literal lead and, for a glob that is more than a trailing `*`,
    its regular expression over the whole target text) are copied out flat.
    """

    __slots__ = ("grant", "pattern", "condition", "id", "deny", "expires_at", "lead", "regex", "quotas")

    def __init__(self, grant: Grant, pattern: TargetPattern, condition: Condition | None) -> None:
        self.grant = grant
        self.pattern = pattern
        self.condition = condition
        self.id = grant.id
        self.deny = grant.effect is Effect.DENY
        self.expires_at = grant.expires_at
        self.lead = f"{pattern.kind}:{pattern.prefix}"
        trailing_star = pattern.name == pattern.prefix + "*"
        self.regex: re.Pattern[str] | None = (
            None if pattern.exact or trailing_star else glob_regex(pattern.text)
        )
        # (kind, Quota) pairs of a limited allow (policy/quotas.py); empty for most grants.
        self.quotas: tuple = ()

    def covers(self, target: str) -> bool:
        """True when this grant's pattern covers the (well-formed) target text."""
        if self.pattern.exact:
            return target == self.lead
        return target.startswith(self.lead) and (self.regex is None or self.regex.fullmatch(target) is not None)

    def __repr__(self) -> str:
        return f"<CompiledGrant {self.grant.describe()}>"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the policy needs to know about a registered client."""

    client_id: str
    restricted: bool


class CompiledPolicy:
    """Grants, memberships and clients of one revision, ready for `decide`."""

    # A candidate decided beside this policy and never enforced (store/shadow.py
    # sets it when loading; gateway/shadow.py records where it differs).
    shadow: Any = None

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
        # target text → principal → exact grants; lead → principal → wildcard
        # grants; principal → all its grants. Filled lowest id first, so every
        # list is in id order.
        self._exact: dict[str, dict[str, list[CompiledGrant]]] = {}
        self._wild: dict[str, dict[str, list[CompiledGrant]]] = {}
        self._all: dict[str, list[CompiledGrant]] = {}
        self._by_id: dict[int, CompiledGrant] = {}
        # How many grants carry a quota: with none, an allowed call has nothing to count.
        self.limited_grants = 0
        for cg in sorted(grants, key=lambda g: g.id):
            self.limited_grants += bool(cg.quotas)
            principal = sys.intern(cg.grant.principal)
            index = self._exact if cg.pattern.exact else self._wild
            index.setdefault(cg.lead, {}).setdefault(principal, []).append(cg)
            self._all.setdefault(principal, []).append(cg)
            self._by_id[cg.id] = cg
        self._derive()

    def _derive(self) -> None:
        # What follows from the indexes; run again by `updated` on its copy.
        self._callers: dict[Identity, Caller] = {}
        self._by_object: dict[int, Caller] = {}
        self.grant_count = len(self._by_id)
        # The lengths of the leads, shortest first, grouped by the lead's first
        # character: `t`ool, `r`esource and `p`rompt leads never share one, so
        # a decision only tries the lengths of its own kind.
        lengths: dict[str, set[int]] = {}
        for lead in self._wild:
            lengths.setdefault(lead[0], set()).add(len(lead))
        self.lead_lengths = {first: tuple(sorted(ns)) for first, ns in lengths.items()}
        # Read-only views for decisions (plain attributes: read on every one).
        self.exact_index: Mapping[str, Mapping[str, list[CompiledGrant]]] = self._exact
        self.wildcard_index: Mapping[str, Mapping[str, list[CompiledGrant]]] = self._wild

    def updated(
        self,
        revision: int,
        grants: Mapping[int, CompiledGrant | None] = {},  # noqa: B006 (read only)
        memberships: Mapping[str, frozenset[str]] = {},  # noqa: B006
        clients: Mapping[str, ClientInfo | None] = {},  # noqa: B006
        disabled: Mapping[str, bool] = {},  # noqa: B006
    ) -> "CompiledPolicy":
        """A new policy at `revision`: this one with the given grants put (None: gone), users' roles
        (empty: none), clients (None: gone) and disabled flags replaced.

        This policy is left as it is (decisions in flight keep reading it):
        the outer indexes are copied and only the lists a change touches are
        rebuilt, so one change costs a copy of the indexes, not a recompile.
        """
        new = object.__new__(CompiledPolicy)
        new.revision = revision
        new.memberships = dict(self.memberships)
        for user, roles in memberships.items():
            if roles:
                new.memberships[user] = roles
            else:
                new.memberships.pop(user, None)
        new.clients = dict(self.clients)
        for client_id, info in clients.items():
            if info is None:
                new.clients.pop(client_id, None)
            else:
                new.clients[client_id] = info
        off = {u for u, d in disabled.items() if not d}
        new.disabled_users = (self.disabled_users - off) | {u for u, d in disabled.items() if d}
        new._exact, new._wild, new._all, new._by_id = dict(self._exact), dict(self._wild), dict(self._all), dict(self._by_id)
        # The inner dicts and lists already copied for `new`, by id. Holding them keeps each id taken:
        # a copy emptied and dropped could otherwise lend its id to a fresh container made below.
        copied: dict[int, object] = {}
        new.limited_grants = self.limited_grants
        for grant_id, cg in grants.items():
            old = new._by_id.pop(grant_id, None)
            if old is not None:
                new._place(old, copied, remove=True)
                new.limited_grants -= bool(old.quotas)
            if cg is not None:
                new._by_id[grant_id] = cg
                new.limited_grants += bool(cg.quotas)
                new._place(cg, copied, remove=False)
        new._derive()
        return new

    def _place(self, cg: CompiledGrant, copied: dict[int, object], remove: bool) -> None:
        # Put `cg` in (or take it out of) this copy's indexes, in id order,
        # copying each shared inner dict or list before its first change.
        principal = sys.intern(cg.grant.principal)
        index = self._exact if cg.pattern.exact else self._wild
        # A container made here is registered at once, and a missing one is always made
        # (a grant id revoked and reused in one delta goes out and in again).
        by_principal = index.get(cg.lead)
        if by_principal is None or id(by_principal) not in copied:
            by_principal = index[cg.lead] = dict(by_principal or {})
            copied[id(by_principal)] = by_principal
        for table, key in ((by_principal, principal), (self._all, principal)):
            listed = table.get(key)
            if listed is None or id(listed) not in copied:
                listed = table[key] = list(listed or ())
                copied[id(listed)] = listed
            if remove:
                listed.remove(cg)
                if not listed:
                    del table[key]
            else:
                insort(listed, cg, key=lambda g: g.id)
        if not by_principal:
            del index[cg.lead]

    def matching(self, principal: str, kind: str, name: str) -> Iterator[CompiledGrant]:
        """Grants of `principal` whose pattern covers the target `kind:name`."""
        target = f"{kind}:{name}"
        yield from self._exact.get(target, {}).get(principal, ())
        for cg in self._all.get(principal, ()):
            if not cg.pattern.exact and cg.covers(target):
                yield cg

    def grants_of(self, principal: str, kind: str) -> Iterator[CompiledGrant]:
        """Every grant of `principal` on targets of `kind`, lowest id first."""
        return (cg for cg in self._all.get(principal, ()) if cg.pattern.kind == kind)

    def roles_of(self, identity: Identity) -> frozenset[str]:
        """The identity's roles: stored memberships plus those its token's claim mapped."""
        if identity.subject is None:
            return frozenset()
        return self.memberships.get(identity.subject, frozenset()) | identity.roles

    def is_restricted(self, client_id: str | None) -> bool:
        """True when the client is registered as restricted (a delegation ceiling)."""
        info = self.clients.get(client_id) if client_id else None
        return bool(info and info.restricted)

    def caller(self, identity: Identity) -> Caller:
        """The identity's sides and condition variables, prepared once per revision."""
        # First by the object itself: a session asks with the same Identity
        # again and again, and this skips hashing its fields. The caller keeps
        # its identity alive, so that id cannot be reused while it is cached.
        seen = self._by_object.get(id(identity))
        if seen is not None and seen.identity is identity:
            return seen
        try:
            found = self._callers.get(identity)
        except TypeError:  # an identity built with mutable sets: memoised by object only
            found = prepare_caller(self, identity)
        else:
            if found is None:
                if len(self._callers) >= CALLER_MEMO_SIZE:
                    self._callers = {}
                found = self._callers[identity] = prepare_caller(self, identity)
        if len(self._by_object) >= CALLER_MEMO_SIZE:
            self._by_object = {}
        if found.identity is not identity:  # an equal identity prepared it
            found = replace(found, identity=identity)
        self._by_object[id(identity)] = found
        return found


def compile_grant(grant: Grant) -> CompiledGrant:
    """Validate and compile one grant; raise PolicyError naming the grant if it is broken."""
    try:
        parse_principal(grant.principal)
        pattern = parse_target_pattern(grant.target)
        condition = compile_condition(grant.condition) if grant.condition else None
        if grant.expires_at is not None and grant.expires_at.tzinfo is None:
            raise PolicyError("the expiry has no timezone")
        quotas = grant_quotas(grant)
    except PolicyError as exc:
        raise PolicyError(f"grant #{grant.id}: {exc}") from exc
    compiled = CompiledGrant(grant, pattern, condition)
    compiled.quotas = quotas
    return compiled


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
