"""What an administrator reviews before approving an upstream: its current tool and prompt definitions, and how they differ from the pins."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

import anyio

from mcp_acl.store.admin import AdminError
from mcp_acl.store.pins import Pins, canonical
from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.offer import read_offer


async def read_current(up: Upstream) -> Pins:
    """Connect to `up` once and return its tool and prompt definitions; raises AdminError (one sentence) when it cannot be read."""
    conn = UpstreamConnection(up, log_failures=False)
    found: Pins | None = None
    why = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(conn.supervise)
        await conn.settled.wait()
        try:
            if conn.client is not None:
                found = (await read_offer(conn)).definitions()
        except Exception as exc:
            why = f"its tools could not be listed ({exc.__class__.__name__})"
        tg.cancel_scope.cancel()
    if found is None:
        raise AdminError(f'the upstream "{up.name}" cannot be reached: {why or conn.last_error}; nothing was approved')
    return found


@dataclass(frozen=True)
class Difference:
    """Tools and prompts added, changed and removed between the pins and what the upstream offers now.

    Each name is the tool's own, or `prompt NAME` for a prompt.
    """

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        """One line, e.g. `added leak, prompt plan; changed echo` (for the audit row)."""
        parts = [f"{what} {', '.join(names)}" for what, names in (("added", self.added), ("changed", self.changed), ("removed", self.removed)) if names]
        return "; ".join(parts) or "no change"


def _changes(before: dict[str, dict], after: dict[str, dict]) -> tuple[list[str], list[str], list[str]]:
    return (
        sorted(set(after) - set(before)),
        sorted(n for n in set(after) & set(before) if canonical(after[n]) != canonical(before[n])),
        sorted(set(before) - set(after)),
    )


def difference(pinned: Pins, current: Pins) -> Difference:
    """How `current` differs from `pinned`: tools by name, then prompts as `prompt NAME`."""
    tools = _changes(pinned.tools, current.tools)
    prompts = _changes(pinned.prompts, current.prompts)
    added, changed, removed = (tuple(t) + tuple(f"prompt {n}" for n in p) for t, p in zip(tools, prompts))
    return Difference(added, changed, removed)


def _lines(d: dict) -> list[str]:
    # Description first, as a person reads it, then the rest as indented JSON.
    rest = {k: v for k, v in d.items() if k != "description"}
    return ["description:", *(d.get("description") or "").splitlines(), *json.dumps(rest, indent=2, sort_keys=True, ensure_ascii=False).splitlines()]


def readable_diff(name: str, pinned: Pins, current: Pins) -> list[str]:
    """Every added, changed and removed tool and prompt of upstream `name`, with a unified diff of each definition.

    A tool's heading is e.g. `changed: github.echo`, a prompt's `changed prompt: github.review`.
    """
    out: list[str] = []
    for kind, before, after in (("", pinned.tools, current.tools), (" prompt", pinned.prompts, current.prompts)):
        added, changed, removed = _changes(before, after)
        for what, names in (("added", added), ("changed", changed), ("removed", removed)):
            for item in names:
                out.append(f"{what}{kind}: {name}.{item}")
                old = _lines(before[item]) if item in before else []
                new = _lines(after[item]) if item in after else []
                out.extend(difflib.unified_diff(old, new, "pinned", "now", lineterm="", n=2))
    return out
