"""How `mcp-acl agent` shows its work in the terminal: each tool call and its decision.

Everything shown comes from the model or from tools (a file's content, a
table's rows): it goes through `printable`, so an escape sequence planted
in a file cannot reach the terminal (rich's Text keeps ESC and C1 codes).
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.text import Text

from mcp_acl.agent import (
    AgentEvent,
    CatalogueEvent,
    NoticeEvent,
    Outcome,
    ReplyEvent,
    StopEvent,
    TextDeltaEvent,
    ToolCallEvent,
)
from mcp_acl.printable import printable

_STYLE = {
    Outcome.ALLOWED: ("allowed", "green"),
    Outcome.REFUSED: ("refused", "red"),
    Outcome.INVALID_ARGUMENTS: ("allowed, but the arguments do not fit", "yellow"),
    Outcome.TOOL_ERROR: ("allowed, but the tool failed", "yellow"),
    Outcome.BLOCKED: ("not sent: malformed call", "yellow"),
    Outcome.FAILED: ("gateway error", "red"),
    Outcome.NOT_RUN: ("not run", "dim"),
}
# A tool result can be long; the terminal shows its start, the model gets all of it.
_SHOWN_RESULT = 300


class EventView:
    """Renders agent events on a Rich console as they happen; model text streams in as it arrives."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._mid_line = False

    def __call__(self, event: AgentEvent) -> None:
        # Everything shown comes from the model or the gateway: escaped, so a
        # tool name or an answer cannot forge a line or repaint the terminal.
        if isinstance(event, TextDeltaEvent):
            self.console.print(Text(_lines(event.text)), end="", soft_wrap=True)
            self._mid_line = True
        elif isinstance(event, ReplyEvent):
            self._end_line()
        elif isinstance(event, ToolCallEvent):
            self._end_line()
            self.console.print(tool_call_line(event), soft_wrap=True)
            if event.outcome != Outcome.NOT_RUN:
                self.console.print(Text("    " + _shorten(event.told_model), style="dim"), soft_wrap=True)
        elif isinstance(event, CatalogueEvent):
            self._end_line()
            changes = [f"-{printable(n)}" for n in event.removed] + [f"+{printable(n)}" for n in event.added]
            self.console.print(Text(f"  the gateway changed your tools: {' '.join(changes)}", style="cyan"))
        elif isinstance(event, StopEvent):
            self._end_line()
            self.console.print(Text(f"  {printable(event.reason)}", style="yellow"), soft_wrap=True)
        elif isinstance(event, NoticeEvent):
            self._end_line()
            self.console.print(Text(f"  note: {printable(event.text)}", style="dim"), soft_wrap=True)

    def _end_line(self) -> None:
        if self._mid_line:
            self.console.print()
            self._mid_line = False


def tool_call_line(event: ToolCallEvent) -> Text:
    """`  → notes.read {"path": "a.md"}  allowed`, coloured by the decision."""
    word, style = _STYLE[event.outcome]
    line = Text("  → ")
    line.append(printable(event.name), style="bold")
    line.append(" " + printable(_arguments(event.arguments)))
    line.append(f"  {word}", style=f"bold {style}")
    return line


def _arguments(arguments: Any) -> str:
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True, default=str)


def _lines(text: str) -> str:
    """Model text as it streams: its line breaks kept, every other control character escaped."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _shorten(text: str) -> str:
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= _SHOWN_RESULT else flat[: _SHOWN_RESULT - 1] + "…"


def result_json(result: Any) -> dict[str, Any]:
    """A task result as JSON for `--json`."""
    return {
        "answer": result.answer,
        "stopped": result.stopped,
        "rounds": result.rounds,
        "calls": [
            {"round": c.round, "tool": c.name, "arguments": c.arguments, "outcome": c.outcome.value,
             "told_model": c.told_model}
            for c in result.calls
        ],
    }
