"""What an administrator reviews before approving an upstream: its current tool and prompt definitions, and how they differ from the pins."""

from __future__ import annotations

import difflib
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio

from mcp_acl.store.admin import AdminError
from mcp_acl.store.pins import Pins, canonical
from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.health import redact
from mcp_acl.upstream.offer import read_offer


async def read_current(up: Upstream, *, nothing: str = "nothing was approved") -> Pins:
    """Connect to `up` once and return its tool and prompt definitions.

    Raises AdminError (one sentence ending in `nothing`) when it cannot be
    read: not reachable, not an MCP server, or a command that ended at once
    (then with the last line it wrote to stderr, scrubbed of credentials).
    """
    conn = UpstreamConnection(up, log_failures=False)
    found: Pins | None = None
    why = None
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog, _quiet_sdk():
        if up.transport == "stdio":
            conn.errlog = errlog
        async with anyio.create_task_group() as tg:
            tg.start_soon(conn.supervise)
            # The SDK's handshake may wait longer than the timeout (its own probe of the protocol
            # era has a fixed 10 s): this bounds the whole attempt, and the cancel below ends it.
            with anyio.move_on_after(up.timeout_seconds):
                await conn.settled.wait()
            if not conn.settled.is_set():
                why = f"it did not answer within {up.timeout_seconds:g} s"
            try:
                if conn.client is not None:
                    found = (await read_offer(conn)).definitions()
            except Exception as exc:
                why = f"its tools could not be listed ({exc.__class__.__name__})"
            tg.cancel_scope.cancel()
        if found is None:
            why = why or conn.last_error or "unknown"
            if up.transport == "stdio":
                errlog.seek(0)
                said = [line.strip() for line in errlog.read().splitlines() if line.strip()]
                if why.endswith("Connection closed"):
                    why = "the command ended before it answered"
                if said:
                    why += f" (its last words: {said[-1][:200]})"
            raise AdminError(f'the upstream "{up.name}" cannot be reached as an MCP server: {redact(why, up)}; {nothing}')
    return found


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    # The SDK logs what it then raises (e.g. an HTML page's content type); a command
    # without logging set up would print that as a second line. Kept only from the
    # last-resort handler: a configured handler above still gets it.
    sdk = logging.getLogger("mcp")
    quiet = logging.NullHandler()
    sdk.addHandler(quiet)
    try:
        yield
    finally:
        sdk.removeHandler(quiet)


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
