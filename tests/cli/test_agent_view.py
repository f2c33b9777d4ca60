"""What `mcp-acl agent` prints: model text and tool results reach the terminal escaped."""

from __future__ import annotations

import io

from rich.console import Console

from mcp_acl.agent import Outcome, TextDeltaEvent, ToolCallEvent
from mcp_acl.cli.agent_view import EventView


def test_escape_sequences_from_the_model_or_a_tool_result_never_reach_the_terminal():
    screen = io.StringIO()
    view = EventView(Console(file=screen, force_terminal=False, width=200))
    # A file planted in the workspace: OSC 52 writes the clipboard, CSI 2J clears the screen.
    view(ToolCallEvent(1, "files.read\x1b[8m", {"path": "a\x9b2J"}, Outcome.ALLOWED, "Q3\x1b]52;c;ZXZpbA==\x07 up"))
    view(TextDeltaEvent("Revenue\x1b[2J grew.\nThat is all."))
    shown = screen.getvalue()
    assert "\x1b" not in shown and "\x9b" not in shown and "\x07" not in shown
    assert "files.read\\x1b[8m" in shown and "Q3\\x1b]52;c;ZXZpbA==\\x07 up" in shown
    assert "Revenue\\x1b[2J grew.\nThat is all." in shown  # its line break kept
