"""Narrowed tokens: a token that may use only part of what its user (and client) may.

A narrowing is a list of entries, each a set of target globs and an
optional CEL condition; it travels in the token as RFC 9396 authorization
details of the type NARROWING_TYPE:

    [{"type": "mcp-acl-narrowing", "targets": ["tool:files.read"],
      "condition": "args.path.startsWith(\"reports/q3\")"}]

It is one more side of the decision, intersected like the client ceiling:
a call is allowed only when the base decision (user, roles, client) allows
it AND some entry's globs cover the target and its condition holds. An
entry's condition that errors counts as false (fail closed). A narrowing
therefore never allows anything the base semantics deny; a target outside
it is refused and hidden. The gateway's own `access-policy` prompt is
decided by the base policy alone: it is where a narrowed model reads what
it was narrowed to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_acl.policy.conditions import Condition, ConditionError, compile_condition
from mcp_acl.policy.model import PolicyError
from mcp_acl.policy.names import TargetPattern, parse_target_pattern

NARROWING_TYPE = "mcp-acl-narrowing"
# The gateway's prompt stating the caller's access (prompting.ACCESS_POLICY).
SELF_DESCRIPTION = "prompt:access-policy"
MAX_ENTRIES = 32
MAX_TARGETS = 64
_FIELDS = frozenset({"type", "targets", "condition"})

# The words of a narrowing's refusals: audit rows keep no narrowing, so replay tells these apart by them.
OUTSIDE = "is outside what this token was narrowed to"
UNREADABLE = "the token is narrowed, but its narrowing could not be read"


def is_narrowing_refusal(reason: str | None) -> bool:
    """Whether an audited refusal came from the caller's narrowed token rather than the policy's grants."""
    return reason is not None and (OUTSIDE in reason or UNREADABLE in reason)


@dataclass(frozen=True, slots=True)
class NarrowingEntry:
    """Targets (globs, any of them) a narrowed token may use, maybe only under a condition."""

    targets: tuple[str, ...]
    condition: str | None = None
    patterns: tuple[TargetPattern, ...] = field(default=(), compare=False, repr=False)
    compiled: Condition | None = field(default=None, compare=False, repr=False)

    def covers(self, target: str) -> bool:
        return any(p.matches(target) for p in self.patterns)

    def describe(self) -> str:
        text = ", ".join(self.targets)
        return f"{text} when {self.condition}" if self.condition else text

    def as_detail(self) -> dict[str, Any]:
        """The RFC 9396 authorization details object for this entry."""
        detail: dict[str, Any] = {"type": NARROWING_TYPE, "targets": list(self.targets)}
        if self.condition:
            detail["condition"] = self.condition
        return detail


@dataclass(frozen=True, slots=True)
class Narrowing:
    """What a narrowed token is limited to; `problem` set means it could not be read (everything refused)."""

    entries: tuple[NarrowingEntry, ...]
    problem: str | None = None

    def describe(self) -> str:
        """One line, e.g. `tool:files.read when args.path.startsWith("reports/")`."""
        if self.problem:
            return f"nothing (its narrowing could not be read: {self.problem})"
        return "; ".join(e.describe() for e in self.entries) or "nothing"

    def as_details(self) -> list[dict[str, Any]]:
        """The `authorization_details` claim value."""
        return [e.as_detail() for e in self.entries]

    def refusal(self, target: str, context: dict[str, Any]) -> str | None:
        """Why this narrowing refuses `target` with the condition variables `context`; None when it lets it through."""
        if target == SELF_DESCRIPTION:
            return None
        if self.problem:
            return f"{target} is refused: {UNREADABLE} ({self.problem})"
        why = None
        for entry in self.entries:
            if not entry.covers(target):
                continue
            if entry.compiled is None:
                return None
            try:
                if entry.compiled.holds(context):
                    return None
                why = why or f"its condition {entry.condition} does not hold for these arguments"
            except ConditionError as exc:
                why = why or f"its condition could not be evaluated ({exc})"
        if why:
            return f"{target} {OUTSIDE}: the narrowing covers it but {why}"
        return f"{target} {OUTSIDE} (only {self.describe()})"

    def may_list(self, target: str, context: dict[str, Any]) -> bool:
        """Could some call to `target` pass? (`context` without args: a condition on args could hold.)"""
        if target == SELF_DESCRIPTION:
            return True
        if self.problem:
            return False
        for entry in self.entries:
            if not entry.covers(target):
                continue
            cond = entry.compiled
            if cond is None or cond.uses_args:
                return True
            try:
                if cond.holds(context):
                    return True
            except ConditionError:
                pass
        return False

    def limit_texts(self, target: str) -> list[str]:
        """What the model is told about this token's limits on `target`."""
        if target == SELF_DESCRIPTION or self.problem:
            return []
        return [
            f"this token is narrowed to {e.condition}" for e in self.entries if e.condition and e.covers(target)
        ]


def narrowing_entry(targets: list[str] | tuple[str, ...], condition: str | None = None, *, check=None) -> NarrowingEntry:
    """One entry, its globs parsed and its condition compiled (`check`: a stricter compiler, e.g. check_condition)."""
    if not targets:
        raise PolicyError("a narrowing entry needs at least one target")
    if len(targets) > MAX_TARGETS:
        raise PolicyError(f"a narrowing entry names at most {MAX_TARGETS} targets")
    patterns = []
    for text in targets:
        if not isinstance(text, str):
            raise PolicyError("a narrowing target is text such as tool:files.read")
        patterns.append(parse_target_pattern(text))
    compiled = None
    if condition is not None:
        if not isinstance(condition, str):
            raise PolicyError("a narrowing condition is a CEL expression (text)")
        compiled = (check or compile_condition)(condition)
        condition = compiled.source
    return NarrowingEntry(tuple(targets), condition, tuple(patterns), compiled)


def parse_details(details: Any, *, check=None) -> Narrowing:
    """A Narrowing from RFC 9396 authorization details; PolicyError for anything malformed.

    Every object must be of NARROWING_TYPE with `targets` (a non-empty list
    of target globs) and an optional `condition`; any other field or type is
    refused, so nothing a client asks for is silently ignored.
    """
    if not isinstance(details, list) or not details:
        raise PolicyError("authorization_details must be a non-empty JSON array")
    if len(details) > MAX_ENTRIES:
        raise PolicyError(f"authorization_details may hold at most {MAX_ENTRIES} objects")
    entries = []
    for i, detail in enumerate(details):
        if not isinstance(detail, dict):
            raise PolicyError(f"authorization_details[{i}] is not an object")
        if detail.get("type") != NARROWING_TYPE:
            raise PolicyError(f"authorization_details[{i}] has type {detail.get('type')!r}: only {NARROWING_TYPE!r} is known")
        extra = sorted(set(detail) - _FIELDS)
        if extra:
            raise PolicyError(f"authorization_details[{i}] has unknown field(s) {', '.join(extra)}")
        targets = detail.get("targets")
        if not isinstance(targets, list):
            raise PolicyError(f"authorization_details[{i}].targets must be a list of target patterns")
        try:
            entries.append(narrowing_entry(targets, detail.get("condition"), check=check))
        except PolicyError as exc:
            raise PolicyError(f"authorization_details[{i}]: {exc}") from None
    return Narrowing(tuple(entries))


def narrowing_from_claim(value: Any) -> Narrowing | None:
    """The narrowing a verified token's `authorization_details` claim carries (None: not narrowed).

    Only objects of NARROWING_TYPE count (another issuer's types are not
    ours to read); if any of them is malformed the narrowing refuses
    everything, since a token that says it is narrowed must never act wider.
    """
    if value is None:
        return None
    if not isinstance(value, list):
        return Narrowing((), problem="authorization_details is not a list")
    ours = [d for d in value if isinstance(d, dict) and d.get("type") == NARROWING_TYPE]
    if not ours:
        return None
    try:
        return parse_details(ours)
    except PolicyError as exc:
        return Narrowing((), problem=str(exc))
