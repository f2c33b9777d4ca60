"""Plain data the decision core works on: grants, identities, decisions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_acl.policy.narrowing import Narrowing


class PolicyError(ValueError):
    """A grant, principal, target or condition that is not well formed."""


class Effect(str, enum.Enum):
    """What a grant does when it matches."""

    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Grant:
    """One stored rule: PRINCIPAL may (or may not) use TARGET, maybe under a condition."""

    id: int
    principal: str
    effect: Effect
    target: str
    condition: str | None = None
    expires_at: datetime | None = None
    note: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    # Quotas (policy/quotas.py), e.g. "100/day" and "10/min"; allow grants only.
    limit: str | None = None
    rate: str | None = None
    # Set on an allow whose calls wait for a person's approval: the principals
    # who may approve ("role:lead,user:carol"), or ADMINS (see policy/approval.py).
    approval_by: str | None = None

    def describe(self) -> str:
        """One line naming the grant, e.g. `#3 allow role:analyst tool:files.*`."""
        text = f"#{self.id} {self.effect.value} {self.principal} {self.target}"
        if self.condition:
            text += f" when {self.condition}"
        for kind in ("limit", "rate"):
            if getattr(self, kind) is not None:
                text += f" {kind} {getattr(self, kind)}"
        if self.approval_by is not None:
            text += f" (needs approval by {self.approval_by})"
        return text

    def limit_text(self) -> str | None:
        """What this grant tells a model about its limits: the note, else the condition; its quotas; who approves."""
        text = self.note or (f"only when {self.condition}" if self.condition else None)
        if self.limit is not None or self.rate is not None:
            from mcp_acl.policy.quotas import quota_phrase  # quotas.py imports this module

            quota = quota_phrase(self)
            if quota:
                text = f"{text.rstrip('.')}; {quota}" if text else quota
        if self.approval_by is not None:
            # The model is told before it calls that a person must approve, and who.
            by = "an administrator" if self.approval_by == "admins" else self.approval_by.replace(",", " or ")
            held = f"each call waits for approval by {by}"
            text = f"{text.rstrip('.')}; {held}" if text else held
        return text


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a user acting through a client, or a client on its own.

    `subject` is None for a service token (client credentials, no user).
    `roles` holds the roles the token's claim mapped to; stored memberships
    are added by the compiled policy at decision time.
    """

    subject: str | None
    client_id: str | None = None
    roles: frozenset[str] = frozenset()
    issuer: str | None = None
    scopes: frozenset[str] = frozenset()
    # Set for a narrowed token (policy/narrowing.py): one more side every decision must pass.
    narrowing: Narrowing | None = None

    @property
    def is_service(self) -> bool:
        """True for a client acting on its own behalf, with no user."""
        return self.subject is None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one question, with why: the reason and the deciding grant."""

    allowed: bool
    reason: str
    grant: Grant | None = None
    revision: int = 0
    # Every grant that was considered and matched the target, for `explain`.
    considered: tuple[int, ...] = field(default=())

    @property
    def grant_id(self) -> int | None:
        """The id of the deciding grant, if a grant decided."""
        return self.grant.id if self.grant else None

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl check --json` prints."""
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "grant": self.grant_id,
            "revision": self.revision,
        }


_DECISION_FIELDS = ("allowed", "reason", "grant", "revision", "considered")
if tuple(f.name for f in fields(Decision)) != _DECISION_FIELDS:
    raise RuntimeError("new_decision() must set exactly Decision's fields")
_set_allowed, _set_reason, _set_grant, _set_revision, _set_considered = (
    getattr(Decision, name).__set__ for name in _DECISION_FIELDS
)
_new = object.__new__


def new_decision(
    allowed: bool, reason: str, grant: Grant | None = None, revision: int = 0, considered: tuple[int, ...] = ()
) -> Decision:
    """The same as Decision(...), at a third of the cost: for the hot path of decide().

    A frozen dataclass sets each field through object.__setattr__; the
    slots' own descriptors store them directly, with the same result.
    """
    decision = _new(Decision)
    _set_allowed(decision, allowed)
    _set_reason(decision, reason)
    _set_grant(decision, grant)
    _set_revision(decision, revision)
    _set_considered(decision, considered)
    return decision
