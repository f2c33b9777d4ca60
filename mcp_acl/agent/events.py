"""What the agent reports while it works: one event per tool call and decision, and more.

An embedding program passes `on_event`; the CLI renders these with Rich.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """What became of one tool call."""

    ALLOWED = "allowed"  # the gateway allowed and ran it, and the tool returned a result
    REFUSED = "refused"  # the gateway's policy refused it, or the tool is not in the caller's catalogue
    INVALID_ARGUMENTS = "invalid arguments"  # the gateway allowed it, but its arguments do not fit the schema
    TOOL_ERROR = "tool error"  # the gateway allowed it, and the tool reported an error
    BLOCKED = "blocked"  # MCP cannot carry it (arguments not a JSON object, no tool name): never sent
    FAILED = "failed"  # the gateway answered with a protocol error instead of a result
    NOT_RUN = "not run"  # over the per-turn cap, or the loop ended (repeat or round cap) before it


@dataclass(frozen=True)
class ToolCallEvent:
    """One tool call the model made, what happened to it, and what the model was told."""

    round: int
    name: str
    arguments: Any
    outcome: Outcome
    told_model: str


@dataclass(frozen=True)
class ReplyEvent:
    """The model's text in one round (empty when it only called tools)."""

    round: int
    text: str


@dataclass(frozen=True)
class TextDeltaEvent:
    """A piece of the model's text as it streams in."""

    text: str


@dataclass(frozen=True)
class CatalogueEvent:
    """The tools offered to the model changed (after the gateway said so, or a refusal)."""

    tools: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class StopEvent:
    """The loop ended early: a repeated call or the round cap."""

    reason: str


@dataclass(frozen=True)
class NoticeEvent:
    """Something the user should know that does not stop the agent."""

    text: str


AgentEvent = ToolCallEvent | ReplyEvent | TextDeltaEvent | CatalogueEvent | StopEvent | NoticeEvent
EventHandler = Callable[[AgentEvent], Awaitable[None] | None]
