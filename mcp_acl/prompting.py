"""Policy embedding for the model: the `access-policy` prompt and the refusal sentences.

A small model wastes fewer calls when it is told up front what it may use
and within which limits, and when a refusal reads as a plain sentence it
can act on. Everything here is pure text built from the policy and the
identity's listing; nothing is read from the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mcp_acl.policy import CompiledPolicy, Decision, Identity
from mcp_acl.policy.decide import limits
from mcp_acl.printable import printable

if TYPE_CHECKING:
    from mcp_acl.gateway.views import Listing

REFUSAL_PREFIX = "Refused:"
UNKNOWN_TOOL_PREFIX = "No tool named "
# A caller with a huge catalogue gets the first names and a count, not a page of text.
MAX_NAMED_TOOLS = 30
# A made-up name is echoed, but never at any length.
_MAX_ECHOED_NAME = 80


@dataclass(frozen=True)
class GatewayPrompt:
    """A prompt the gateway itself offers (an upstream's prompts are gateway.specs.PromptSpec)."""

    name: str
    title: str
    description: str

    @property
    def target(self) -> str:
        """The policy target, e.g. `prompt:access-policy`."""
        return f"prompt:{self.name}"


ACCESS_POLICY = GatewayPrompt(
    name="access-policy",
    title="Your access policy",
    description="What you may use through this server, within which limits, and what a refusal means. "
    "Use the text as your system message.",
)

PROMPTS: tuple[GatewayPrompt, ...] = (ACCESS_POLICY,)


def refusal_text(decision: Decision) -> str:
    """The one sentence a refused call returns, e.g. `Refused: no grant allows user bob to use tool:sql.execute.`"""
    return f"{REFUSAL_PREFIX} {decision.reason.rstrip('.')}."


def unknown_tool_text(name: str, tools: Sequence[str]) -> str:
    """The answer to a call for a tool the caller cannot see, hidden or missing alike.

    `files.read`, ("files.list",) -> `No tool named files.read is available to you. Your tools: files.list.`
    """
    # Escaped too: the name is the caller's, and clients show this text to people.
    shown = printable(" ".join(name.split()))
    if len(shown) > _MAX_ECHOED_NAME:
        shown = shown[: _MAX_ECHOED_NAME - 1] + "…"
    text = f"{UNKNOWN_TOOL_PREFIX}{shown} is available to you."
    if not tools:
        return f"{text} You have no tools."
    listed = ", ".join(tools[:MAX_NAMED_TOOLS])
    more = len(tools) - MAX_NAMED_TOOLS
    if more > 0:
        listed += f" and {more} more (see tools/list)"
    return f"{text} Your tools: {listed}."


def who(identity: Identity, roles: frozenset[str] | set[str]) -> str:
    """`user alice (roles: analyst) through the client mcp-acl-cli`, or the client alone."""
    if identity.subject is None:
        return f"the client {identity.client_id} (acting on its own behalf)"
    text = f"user {identity.subject}"
    if roles:
        text += f" (roles: {', '.join(sorted(roles))})"
    if identity.client_id:
        text += f" through the client {identity.client_id}"
    return text


def _bullet(name: str, texts: list[str]) -> str:
    return f"- {name}: {'; '.join(t.rstrip('.') for t in texts)}" if texts else f"- {name}"


def access_policy_text(policy: CompiledPolicy, identity: Identity, listing: Listing, now: datetime) -> str:
    """The system message for `identity`: what it may use, its limits, and how to react to a refusal."""
    lines = [
        f"You are acting for {who(identity, policy.roles_of(identity))}.",
        "Every call you make is checked against an access policy at the moment you make it "
        f"(policy revision {policy.revision}).",
        "",
    ]
    held = False
    if identity.narrowing is not None:
        # A narrowed token (policy/narrowing.py): say so, or the model would blame the user's grants.
        lines[-1:-1] = [
            f"Your token is narrowed to {identity.narrowing.describe()}: you may use only that, "
            "even where your user may do more.",
        ]
    if listing.tools:
        lines.append("Tools you may call, with your limits:")
        for t in listing.tools:
            texts = limits(policy, identity, f"tool:{t.name}", now)
            held = held or any("waits for approval" in text for text in texts)
            lines.append(_bullet(t.name, texts))
    else:
        lines.append("You may not call any tool.")
    if listing.resources or listing.templates:
        lines.append("")
        lines.append("Resources you may read:")
        lines += [_bullet(r.uri, limits(policy, identity, f"resource:{r.uri}", now)) for r in listing.resources]
        lines += [f"- {t.uri_template} (template)" for t in listing.templates]
    lines += [
        "",
        "Nothing else exists for you: do not guess names of other tools or resources.",
        f'A refused call returns an error that starts with "{REFUSAL_PREFIX}" and says in one sentence '
        "what was refused and why. A refusal is final for those arguments: do not repeat the call. "
        "Change the arguments to stay within your limits, use another tool you may call, or tell the "
        "user that the policy does not allow it.",
        "The policy can change while you work: a call allowed before can be refused now.",
    ]
    if held:
        # Approvals (policy/approval.py): the model should expect the wait and not work around a denial.
        lines.append(
            "A call that waits for approval is held until the person named approves or denies it. "
            "If it is denied or not approved in time, tell the user who must approve it; do not retry it "
            "with other arguments to get around the approval."
        )
    return "\n".join(lines)
