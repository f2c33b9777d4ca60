"""What an administrator reviews before approving an upstream: its current tool definitions, and how they differ from the pins."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

import anyio

from mcp_acl.store.admin import AdminError
from mcp_acl.store.pins import canonical
from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.tools import definition, read_tools


async def read_current(up: Upstream) -> dict[str, dict]:
    """Connect to `up` once and return its tool definitions by name; raises AdminError (one sentence) when it cannot be read."""
    conn = UpstreamConnection(up, log_failures=False)
    found: dict[str, dict] | None = None
    why = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(conn.supervise)
        await conn.settled.wait()
        try:
            if conn.client is not None:
                found = {tool.name: definition(tool) for tool in await read_tools(conn)}
        except Exception as exc:
            why = f"its tools could not be listed ({exc.__class__.__name__})"
        tg.cancel_scope.cancel()
    if found is None:
        raise AdminError(f'the upstream "{up.name}" cannot be reached: {why or conn.last_error}; nothing was approved')
    return found


@dataclass(frozen=True)
class Difference:
    """Tools added, changed and removed between the pins and what the upstream offers now."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        """One line, e.g. `added leak; changed echo` (for the audit row)."""
        parts = [f"{what} {', '.join(names)}" for what, names in (("added", self.added), ("changed", self.changed), ("removed", self.removed)) if names]
        return "; ".join(parts) or "no change"


def difference(pinned: dict[str, dict], current: dict[str, dict]) -> Difference:
    """How `current` differs from `pinned`, by tool name."""
    return Difference(
        added=tuple(sorted(set(current) - set(pinned))),
        changed=tuple(sorted(n for n in set(current) & set(pinned) if canonical(current[n]) != canonical(pinned[n]))),
        removed=tuple(sorted(set(pinned) - set(current))),
    )


def _lines(d: dict) -> list[str]:
    # Description first, as a person reads it, then the rest as indented JSON.
    rest = {k: v for k, v in d.items() if k != "description"}
    return ["description:", *(d.get("description") or "").splitlines(), *json.dumps(rest, indent=2, sort_keys=True, ensure_ascii=False).splitlines()]


def readable_diff(name: str, pinned: dict[str, dict], current: dict[str, dict]) -> list[str]:
    """Every added, changed and removed tool of upstream `name`, with a unified diff of each definition."""
    diff = difference(pinned, current)
    out: list[str] = []
    for tool in diff.added + diff.changed + diff.removed:
        kind = "added" if tool in diff.added else "changed" if tool in diff.changed else "removed"
        out.append(f"{kind}: {name}.{tool}")
        before = _lines(pinned[tool]) if tool in pinned else []
        after = _lines(current[tool]) if tool in current else []
        out.extend(difflib.unified_diff(before, after, "pinned", "now", lineterm="", n=2))
    return out
