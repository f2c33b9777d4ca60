"""Asking the stored policy a question: may PRINCIPAL use TARGET with ARGS, through CLIENT?

This is what `mcp-acl check` and `mcp-acl policy test` run. The principal
says whom to decide as:

- `user:NAME`: that stored user with its stored roles; with a client, as a
  session of that client would be (a restricted client caps the user);
- `client:ID`: a service token of that client, decided on the client side alone;
- `role:NAME`: a synthetic user holding only that role, for "what may an
  analyst do?". Its subject has a space in it, so it can never be a stored user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcp_acl.policy import CompiledPolicy, Decision, Identity, PolicyError, decide, parse_target
from mcp_acl.store.admin import AdminError, PolicyAdmin


@dataclass(frozen=True)
class Question:
    """One question for the policy; `client` is the OAuth client a user acts through."""

    principal: str
    target: str
    args: dict[str, Any] | None = None
    client: str | None = None


@dataclass(frozen=True)
class Asker:
    """Whom a question is decided as, checked against the store."""

    identity: Identity
    # Set for `role:NAME`: the decision is for a synthetic member of this role.
    as_role: str | None = None


def synthetic_member(role: str) -> str:
    """The subject used to decide as "someone holding only `role`"."""
    return f"(a member of role {role})"


def resolve(admin: PolicyAdmin, question: Question) -> Asker:
    """Check the question's principal, client and target; raise AdminError if any is bad."""
    who = admin.require_principal(question.principal)
    if question.client is not None:
        if who.kind == "client":
            raise AdminError(f"{question.principal} is a client, decided on its own: leave out the client")
        admin.require_principal(f"client:{question.client}")
    try:
        parse_target(question.target)
    except PolicyError as exc:
        raise AdminError(str(exc)) from exc
    if question.args is not None and not isinstance(question.args, dict):
        raise AdminError("the arguments must be an object (a JSON object or YAML mapping)")
    if who.kind == "client":
        return Asker(Identity(None, client_id=who.name))
    if who.kind == "role":
        return Asker(Identity(synthetic_member(who.name), question.client, roles=frozenset({who.name})), as_role=who.name)
    return Asker(Identity(who.name, question.client))


def ask(policy: CompiledPolicy, asker: Asker, question: Question, now: datetime) -> Decision:
    """Decide the question on `policy` (pass `PolicyLoader(engine).current()`)."""
    return decide(policy, asker.identity, question.target, question.args or {}, now)
