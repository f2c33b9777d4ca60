"""What the agent itself limits: how often the same call may be made in one task.

Whether a call may run at all is the gateway's to decide and audit, so the
agent sends every call the model makes, even one for a tool it was not
offered or with arguments that do not fit the schema: the gateway refuses
it and the audit log shows the model probing. The agent only stops a task
that goes in circles (here) and caps the calls of one turn (see loop.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from mcp_types import Tool


class Catalogue:
    """The tools the identity may use right now, as the gateway listed them."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = list(tools)

    @property
    def names(self) -> list[str]:
        """Tool names in catalogue order."""
        return [tool.name for tool in self.tools]


def call_key(name: str, arguments: Any) -> str:
    """The identity of a call for repeat counting: name plus canonical JSON arguments."""
    return name + " " + json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class RepeatCounter:
    """Counts identical calls within one task; the call after `max_repeats` identical ones is refused."""

    def __init__(self, max_repeats: int) -> None:
        self.max_repeats = max_repeats
        self._seen: Counter[str] = Counter()

    def admit(self, name: str, arguments: Any) -> bool:
        """Count the call; False when it is one identical call too many."""
        key = call_key(name, arguments)
        self._seen[key] += 1
        return self._seen[key] <= self.max_repeats
