"""What an app reads back from a governed chat: Ollama's own chat answer, streamed or whole.

The tool loop's rounds stay on the server: the app never sees a tool call
(it could not run one, and it must not try), only the model's text as it
streams from every round, rounds joined by a blank line, and Ollama's
closing object. That object also carries an `mcp_acl` field listing each
tool call the loop made and what became of it (Ollama clients ignore
fields they do not know):

    {"model": "qwen3:4b", "message": {"role": "assistant", "content": ""}, "done": true,
     "done_reason": "stop", "eval_count": 12, …,
     "mcp_acl": {"tool_calls": [{"name": "files.read", "outcome": "allowed"}]}}

A loop that stops early (the round cap, a call repeated too often) ends its
answer with a line saying so, since there is no model answer to show.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from mcp_acl.agent.events import AgentEvent, ReplyEvent, TextDeltaEvent, ToolCallEvent
from mcp_acl.agent.loop import TaskResult

# Ollama's closing statistics, taken from the model's last reply.
_STATS = ("load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration")

Emit = Callable[[bytes], None]


def created_at() -> str:
    """The timestamp Ollama puts on each chat object, e.g. 2026-12-06T23:01:02.123456Z."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def line(value: dict[str, Any]) -> bytes:
    """One NDJSON line."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class AnswerWriter:
    """Hears the loop's events; streams text and thinking as chat objects (`emit`) or gathers them."""

    def __init__(self, model: str, emit: Emit | None) -> None:
        self.model = model
        self.emit = emit
        self.started = time.perf_counter_ns()
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._calls: list[dict[str, str]] = []
        # Whether a finished round said something: the next round's text starts on a new paragraph.
        self._said = False
        self._round_text = False

    def on_event(self, event: AgentEvent) -> None:
        """The loop's event handler."""
        if isinstance(event, TextDeltaEvent):
            text = event.text
            if not self._round_text and self._said:
                text = "\n\n" + text
            self._round_text = True
            self._piece("content", text)
        elif isinstance(event, ReplyEvent):
            self._said = self._said or self._round_text
            self._round_text = False
        elif isinstance(event, ToolCallEvent):
            self._calls.append({"name": event.name, "outcome": event.outcome.value})

    def on_thinking(self, text: str) -> None:
        """The loop's thinking sink."""
        self._piece("thinking", text, kept=self._thinking)

    def _piece(self, field: str, text: str, kept: list[str] | None = None) -> None:
        (self._text if kept is None else kept).append(text)
        if self.emit is not None:
            self.emit(self.piece(field, text))

    # -- the wire format (Ollama's here; openai.py writes OpenAI's)

    media_type = b"application/x-ndjson"

    def piece(self, field: str, text: str) -> bytes:
        """One streamed chunk carrying `text` as the message's `field` (content or thinking)."""
        return line({"model": self.model, "created_at": created_at(),
                     "message": {"role": "assistant", "content": "", field: text}, "done": False})

    def finish(self, result: TaskResult) -> bytes:
        """The last bytes of the answer: the closing object (the whole answer when not streaming)."""
        return line(self.closing(result))

    @staticmethod
    def error_line(message: str) -> bytes:
        """An error once the stream has started."""
        return line({"error": message})

    @staticmethod
    def error_body(message: str) -> bytes:
        """An error answered with a status, before anything was streamed."""
        return json.dumps({"error": message}).encode()

    def _stopped(self, result: TaskResult) -> None:
        if result.stopped is not None:
            self.on_event(TextDeltaEvent(f"[mcp-acl {result.stopped}]"))

    @property
    def text(self) -> str:
        """Everything the model said, rounds joined."""
        return "".join(self._text)

    @property
    def calls(self) -> list[dict[str, str]]:
        """Each tool call the loop made and its outcome."""
        return list(self._calls)

    def closing(self, result: TaskResult) -> dict[str, Any]:
        """Ollama's last chat object: the whole message when not streaming, statistics, and the tool calls."""
        self._stopped(result)
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        if self.emit is None:
            message["content"] = "".join(self._text)
            if self._thinking:
                message["thinking"] = "".join(self._thinking)
        final = dict(result.last_reply.final) if result.last_reply is not None else {}
        closing: dict[str, Any] = {
            "model": self.model, "created_at": created_at(), "message": message, "done": True,
            "done_reason": final.get("done_reason") or "stop",
            "total_duration": time.perf_counter_ns() - self.started,
        }
        closing.update({k: final[k] for k in _STATS if k in final})
        closing["mcp_acl"] = {"tool_calls": list(self._calls)}
        return closing
