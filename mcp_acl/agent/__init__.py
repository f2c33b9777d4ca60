"""Agents that run small models on Ollama through the gateway, under the caller's identity.

    from mcp_acl.agent import run_task

    result = await run_task("Summarise reports/q3.md", model="qwen3:4b", token=token,
                            gateway_url="http://127.0.0.1:8000/mcp", on_event=print)

For a conversation, `async with Agent(AgentSettings(...), StaticToken(token)) as agent`
and call `await agent.ask(...)` once per user turn.
"""

from __future__ import annotations

from typing import Any

from mcp_acl.agent.credentials import BearerAuth, ClientCredentials, StaticToken, TokenSource, token_source
from mcp_acl.agent.errors import (
    AgentError,
    CredentialsRefused,
    DiscoveryFailed,
    GatewayFailed,
    GatewayUnreachable,
    ModelNotPulled,
    ModelWithoutTools,
    OllamaFailed,
    OllamaUnreachable,
    SettingsError,
    TokenRefused,
)
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
from mcp_acl.agent.loop import Agent, AgentSettings, TaskResult
from mcp_acl.agent.tool_format import ollama_tool, ollama_tools


async def run_task(task: str, *, model: str, token: str | None = None, client_id: str | None = None,
                   client_secret: str | None = None, on_event: EventHandler | None = None,
                   **settings: Any) -> TaskResult:
    """Run one task with a fresh agent: `settings` are `AgentSettings` fields (gateway_url, max_rounds, …)."""
    agent_settings = AgentSettings(model=model, **settings)
    tokens = token_source(agent_settings.gateway_url, token=token, client_id=client_id, client_secret=client_secret)
    async with Agent(agent_settings, tokens, on_event=on_event) as agent:
        return await agent.ask(task)


__all__ = [
    "Agent", "AgentError", "AgentEvent", "AgentSettings", "BearerAuth", "CatalogueEvent", "ClientCredentials",
    "CredentialsRefused", "DiscoveryFailed", "EventHandler", "GatewayFailed", "GatewaySession",
    "GatewayUnreachable", "ModelNotPulled", "ModelWithoutTools", "NoticeEvent", "OllamaFailed",
    "OllamaUnreachable", "Outcome", "ReplyEvent", "SettingsError", "StaticToken", "StopEvent", "TaskResult",
    "TextDeltaEvent", "TokenRefused", "TokenSource", "ToolCallEvent", "ollama_tool", "ollama_tools", "run_task",
    "token_source",
]
