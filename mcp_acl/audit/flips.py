"""Decisions a candidate policy would flip, grouped by target and grants, with example calls.

`policy replay` (recorded calls re-decided) and `policy shadow report`
(live calls decided twice) both report in this shape: one group per
direction (allow→deny, deny→allow), target, the grant that decided before
and the grant that decides under the candidate, counting its calls and
keeping the first few as examples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

EXAMPLES = 3


@dataclass(frozen=True)
class Flip:
    """One call the candidate decides the other way."""

    audit_id: int | None
    at: str
    subject: str | None
    client_id: str | None
    action: str | None
    target: str
    was: str  # "allow" or "deny": what was enforced
    was_grant: str | None  # the deciding grant, as the stored policy names it
    was_reason: str | None
    now_grant: str | None  # the candidate's deciding grant (candidate.label)
    now_reason: str

    @property
    def now(self) -> str:
        return "deny" if self.was == "allow" else "allow"

    def caller(self) -> str:
        """E.g. `user alice via ollama-agent`, `client report-bot`."""
        if self.subject is None:
            return f"client {self.client_id}"
        return f"user {self.subject}" + (f" via {self.client_id}" if self.client_id else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id, "at": self.at, "subject": self.subject, "client": self.client_id,
            "action": self.action, "reason_was": self.was_reason, "reason_now": self.now_reason,
        }


@dataclass
class FlipGroup:
    """The flips of one direction, target and pair of deciding grants."""

    was: str
    target: str
    was_grant: str | None
    now_grant: str | None
    count: int = 0
    examples: list[Flip] = field(default_factory=list)

    @property
    def now(self) -> str:
        return "deny" if self.was == "allow" else "allow"

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.was, "to": self.now, "target": self.target, "grant_was": self.was_grant,
            "grant_now": self.now_grant, "calls": self.count, "examples": [f.as_dict() for f in self.examples],
        }


def group_flips(flips: Iterable[Flip], examples: int = EXAMPLES) -> list[FlipGroup]:
    """Flips grouped, allow→deny first, then by target; each group keeps its first `examples` calls."""
    groups: dict[tuple, FlipGroup] = {}
    for flip in flips:
        key = (flip.was, flip.target, flip.was_grant, flip.now_grant)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FlipGroup(flip.was, flip.target, flip.was_grant, flip.now_grant)
        group.count += 1
        if len(group.examples) < examples:
            group.examples.append(flip)
    # allow→deny first: a call that would stop working is the news.
    return sorted(groups.values(), key=lambda g: (g.was != "allow", g.target, g.was_grant or "", g.now_grant or ""))


def describe_group(group: FlipGroup) -> list[str]:
    """The lines `policy replay` and `policy shadow report` print for one group."""
    calls = f"{group.count} call{'' if group.count == 1 else 's'}"
    lines = [
        f"{group.was}→{group.now}  {group.target}  ({calls})",
        f"  was: {group.was_grant or 'no grant (default deny)'}",
        f"  now: {group.now_grant or 'no grant (default deny)'}",
    ]
    for f in group.examples:
        where = f"#{f.audit_id} " if f.audit_id is not None else ""
        lines.append(f"  e.g. {where}{f.at[:19]} {f.caller()}: {f.now_reason}")  # to the second
    return lines
