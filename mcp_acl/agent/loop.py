"""The agent loop: a model on Ollama working through the gateway as its caller.

Each round sends the conversation and the identity's tools to the model.
Every tool call it makes goes to the gateway, which decides and audits it,
even a call for a tool the model was not offered or with arguments that do
not fit; only a call MCP cannot carry (arguments that are not a JSON
object) is answered here. Results and refusals go back as tool messages.
A turn runs at most `max_calls_per_turn` calls; the rest are answered "not
run". The loop ends when the model answers without a tool call, or early at
the round cap or a call repeated too often.

`ToolLoop` is that loop over any `ToolSide`: `mcp-acl agent` (`Agent`)
reaches the gateway over MCP (`GatewaySession`); the governed Ollama
endpoint (mcp_acl/ollama_endpoint) calls it in-process for the request's
caller. Both run these same rounds, guards and caps.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

import mcp_types as types
from mcp_types import Tool

from mcp_acl.agent import DEFAULT_MAX_CALLS_PER_TURN, DEFAULT_MAX_REPEATS, DEFAULT_MAX_ROUNDS, DEFAULT_NUM_CTX
from mcp_acl.agent.credentials import TokenSource
from mcp_acl.agent.errors import GatewayFailed, SettingsError
from mcp_acl.agent.events import (
    AgentEvent,
    CatalogueEvent,
    EventHandler,
    NoticeEvent,
    Outcome,
    ReplyEvent,
    StopEvent,
    TextDeltaEvent,
    ToolCallEvent,
)
from mcp_acl.agent.gateway_session import GatewaySession
from mcp_acl.agent.guards import Catalogue, RepeatCounter
from mcp_acl.agent.messages import (
    FALLBACK_SYSTEM,
    gateway_error_text,
    invalid_arguments_text,
    is_invalid_arguments,
    is_refusal,
    over_cap_text,
    result_text,
    stopped_text,
    system_message,
    tool_message,
    unsendable_text,
    user_message,
)
from mcp_acl.agent.model import ModelReply, OllamaModel, TextSink, ToolCallRequest
from mcp_acl.agent.tool_format import ollama_tools
from mcp_acl.config import DEFAULT_RESOURCE_URL


@dataclass(frozen=True)
class LoopLimits:
    """How far one task may go: rounds, identical calls, calls per turn."""

    max_rounds: int = DEFAULT_MAX_ROUNDS
    max_repeats: int = DEFAULT_MAX_REPEATS
    max_calls_per_turn: int = DEFAULT_MAX_CALLS_PER_TURN


@dataclass(frozen=True)
class AgentSettings:
    """Which model and gateway, and the loop's limits."""

    model: str
    gateway_url: str = DEFAULT_RESOURCE_URL
    ollama_url: str | None = None
    num_ctx: int = DEFAULT_NUM_CTX
    max_rounds: int = DEFAULT_MAX_ROUNDS
    max_repeats: int = DEFAULT_MAX_REPEATS
    mcp_mode: str = "auto"
    max_calls_per_turn: int = DEFAULT_MAX_CALLS_PER_TURN

    def __post_init__(self) -> None:
        if not self.model:
            raise SettingsError("name a model, e.g. --model qwen3:4b")
        for name in ("num_ctx", "max_rounds", "max_repeats", "max_calls_per_turn"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.replace('_', '-')} must be at least 1")

    @property
    def limits(self) -> LoopLimits:
        """The loop's caps from these settings."""
        return LoopLimits(self.max_rounds, self.max_repeats, self.max_calls_per_turn)


@dataclass(frozen=True)
class TaskResult:
    """How one task ended: the model's answer, or why the loop stopped early."""

    answer: str | None
    stopped: str | None
    rounds: int
    calls: tuple[ToolCallEvent, ...]
    # The model's last reply (its `final` holds Ollama's closing statistics).
    last_reply: ModelReply | None = None


class ToolSide(Protocol):
    """Where the loop's tools live: the gateway, over MCP or in-process, for one caller."""

    @property
    def changed(self) -> Any:
        """An event-like object whose `is_set()` says the catalogue changed since it was last listed."""
        ...

    async def tools(self) -> list[types.Tool]:
        """The caller's catalogue."""
        ...

    async def policy_prompt(self) -> str | None:
        """The caller's access-policy prompt, or None when it may not have one."""
        ...

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Decide, audit and run one call; a protocol-level failure raises GatewayFailed."""
        ...


class ToolLoop:
    """The rounds of one caller's tasks: model, tools, guards; shared by `Agent` and the Ollama endpoint."""

    def __init__(self, model: OllamaModel, side: ToolSide, limits: LoopLimits, *,
                 on_event: EventHandler | None = None, on_thinking: TextSink | None = None) -> None:
        self.model = model
        self.side = side
        self.limits = limits
        self._on_event = on_event
        self._on_thinking = on_thinking
        self.catalogue = Catalogue([])
        self.offered: list[dict[str, Any]] = []
        self.system = FALLBACK_SYSTEM
        self._stale = False
        self._loaded = False

    async def refresh(self) -> None:
        """Refetch the catalogue and the policy prompt from the gateway."""
        before = self.catalogue.names if self._loaded else None
        tools = await self.side.tools()
        prompt = await self.side.policy_prompt()
        self.catalogue = Catalogue(tools)
        self.offered = ollama_tools(tools)
        self._stale = False
        if prompt is None and (not self._loaded or self.system != FALLBACK_SYSTEM):
            await self._emit(NoticeEvent("the gateway offers no access-policy prompt; using a generic system message"))
        self.system = prompt or FALLBACK_SYSTEM
        self._loaded = True
        after = self.catalogue.names
        if before is not None and set(after) != set(before):
            added = tuple(n for n in after if n not in before)
            removed = tuple(n for n in before if n not in after)
            await self._emit(CatalogueEvent(tuple(after), added, removed))

    async def run(self, messages: list[dict[str, Any]]) -> TaskResult:
        """Run the task whose last turn is in `messages` to its end, appending each reply and tool answer there.

        Each round sends the access-policy system message, then `messages`.
        """
        repeats = RepeatCounter(self.limits.max_repeats)
        calls: list[ToolCallEvent] = []
        round_no = 0
        while True:
            round_no += 1
            if self._stale or self.side.changed.is_set():
                await self.refresh()
            reply = await self.model.reply(
                [system_message(self.system), *messages], self.offered, on_text=self._delta,
                on_thinking=self._on_thinking,
            )
            messages.append(reply.as_message())
            await self._emit(ReplyEvent(round_no, reply.content))
            if not reply.tool_calls:
                return TaskResult(reply.content, None, round_no, tuple(calls), reply)
            if round_no >= self.limits.max_rounds:
                # The model could not read these results anyway: nothing runs for nothing.
                await self._leave_unrun(messages, reply.tool_calls, round_no, calls)
                return await self._stop(
                    f"stopped after {round_no} rounds with the model still calling tools "
                    "(raise --max-rounds if the task needs more)", round_no, calls, reply)
            cap = self.limits.max_calls_per_turn
            now, over = reply.tool_calls[:cap], reply.tool_calls[cap:]
            for index, call in enumerate(now):
                if not repeats.admit(call.name, call.arguments):
                    await self._leave_unrun(messages, now[index:] + over, round_no, calls)
                    return await self._stop(
                        f"stopped: the model made the same call to {call.name} more than "
                        f"{self.limits.max_repeats} times", round_no, calls, reply)
                outcome, told = await self._run(call)
                await self._record(messages, ToolCallEvent(round_no, call.name, call.arguments, outcome, told), calls)
            if over:
                await self._emit(NoticeEvent(
                    f"the model made {len(reply.tool_calls)} tool calls in one turn; only the first {cap} ran "
                    "(--max-calls-per-turn)"))
                await self._leave_unrun(messages, over, round_no, calls, over_cap_text(cap))

    async def _run(self, call: ToolCallRequest) -> tuple[Outcome, str]:
        """Send the call to the gateway, which decides and audits it; what happened and what the model is told."""
        if call.problem is not None:
            # MCP carries arguments only as an object: there is nothing to send.
            return Outcome.BLOCKED, unsendable_text(call.name, call.problem)
        try:
            result = await self.side.call(call.name, dict(call.arguments))
        except GatewayFailed as exc:
            self._stale = True
            return Outcome.FAILED, gateway_error_text(exc.detail)
        if is_refusal(result):
            # A refusal may mean the policy changed: refetch before the next turn.
            self._stale = True
            return Outcome.REFUSED, result_text(result)
        if is_invalid_arguments(result):
            return Outcome.INVALID_ARGUMENTS, invalid_arguments_text(result)
        return (Outcome.TOOL_ERROR if result.is_error else Outcome.ALLOWED), result_text(result)

    async def _record(self, messages: list[dict[str, Any]], event: ToolCallEvent, calls: list[ToolCallEvent]) -> None:
        messages.append(tool_message(event.name, event.told_model))
        calls.append(event)
        await self._emit(event)

    async def _leave_unrun(self, messages: list[dict[str, Any]], pending: tuple[ToolCallRequest, ...], round_no: int,
                           calls: list[ToolCallEvent], told: str | None = None) -> None:
        # Every tool call in the history gets an answer, so the next task starts from a consistent chat.
        for call in pending:
            event = ToolCallEvent(round_no, call.name, call.arguments, Outcome.NOT_RUN, told or stopped_text())
            await self._record(messages, event, calls)

    async def _stop(self, reason: str, round_no: int, calls: list[ToolCallEvent], reply: ModelReply) -> TaskResult:
        await self._emit(StopEvent(reason))
        return TaskResult(None, reason, round_no, tuple(calls), reply)

    async def _delta(self, text: str) -> None:
        await self._emit(TextDeltaEvent(text))

    async def _emit(self, event: AgentEvent) -> None:
        if self._on_event is not None:
            shown = self._on_event(event)
            if shown is not None:
                await shown


class Agent:
    """The loop, with its Ollama model and gateway session; `async with Agent(...) as agent`."""

    def __init__(self, settings: AgentSettings, tokens: TokenSource, *, on_event: EventHandler | None = None) -> None:
        self.settings = settings
        self._tokens = tokens
        self._on_event = on_event
        self._stack: AsyncExitStack | None = None
        self._loop: ToolLoop | None = None
        self._messages: list[dict[str, Any]] = []

    async def __aenter__(self) -> "Agent":
        async with AsyncExitStack() as stack:
            s = self.settings
            model = await stack.enter_async_context(OllamaModel(s.model, s.ollama_url, num_ctx=s.num_ctx))
            await model.check()
            self.session = await stack.enter_async_context(
                GatewaySession(s.gateway_url, self._tokens, mode=s.mcp_mode)
            )
            self._loop = ToolLoop(model, self.session, s.limits, on_event=self._on_event)
            await self._loop.refresh()
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    @property
    def _running(self) -> ToolLoop:
        if self._loop is None:
            raise RuntimeError("Agent is not open: use `async with Agent(...) as agent`")
        return self._loop

    @property
    def tools(self) -> list[Tool]:
        """The identity's catalogue as last fetched: exactly what the model is offered."""
        return list(self._running.catalogue.tools)

    @property
    def offered(self) -> list[dict[str, Any]]:
        """The tools in Ollama's format, as sent in each chat request."""
        return list(self._running.offered)

    @property
    def system_prompt(self) -> str:
        """The system message: the gateway's access-policy prompt for this identity."""
        return self._running.system

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (without the system message)."""
        return list(self._messages)

    def reset(self) -> None:
        """Forget the conversation; the next task starts afresh."""
        self._messages.clear()

    async def refresh(self) -> None:
        """Refetch the catalogue and the policy prompt from the gateway."""
        await self._running.refresh()

    async def ask(self, task: str) -> TaskResult:
        """Run one task to its end; the conversation carries on into the next `ask`."""
        self._messages.append(user_message(task))
        return await self._running.run(self._messages)
