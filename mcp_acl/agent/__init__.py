"""Agents that run small models on Ollama through the gateway, under the caller's identity.

    from mcp_acl.agent import run_task

    result = await run_task("Summarise reports/q3.md", model="qwen3:4b", token=token,
                            gateway_url="http://127.0.0.1:8000/mcp", on_event=print)

For a conversation, `async with Agent(AgentSettings(...), StaticToken(token)) as agent`
and call `await agent.ask(...)` once per user turn.

The names below load their modules on first use (PEP 562), so importing the
package (as every `mcp-acl` command does) does not pull in the MCP client and
the `ollama` client until an agent actually runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_acl.agent.events import EventHandler
    from mcp_acl.agent.loop import TaskResult

# Ollama's default context (4k on small GPUs) silently truncates long tool lists.
DEFAULT_NUM_CTX = 8192
DEFAULT_MAX_ROUNDS = 8
DEFAULT_MAX_REPEATS = 3
# A weak model may emit dozens of calls in one turn; each one is a gateway decision.
DEFAULT_MAX_CALLS_PER_TURN = 8

_EXPORTS = {
    "mcp_acl.agent.credentials": ("BearerAuth", "ClientCredentials", "StaticToken", "TokenSource", "token_source"),
    "mcp_acl.agent.errors": (
        "AgentError", "CredentialsRefused", "DiscoveryFailed", "GatewayFailed", "GatewayUnreachable",
        "ModelNotPulled", "ModelWithoutTools", "OllamaFailed", "OllamaUnreachable", "SettingsError", "TokenRefused",
    ),
    "mcp_acl.agent.events": (
        "AgentEvent", "CatalogueEvent", "EventHandler", "NoticeEvent", "Outcome", "ReplyEvent", "StopEvent",
        "TextDeltaEvent", "ToolCallEvent",
    ),
    "mcp_acl.agent.gateway_session": ("GatewaySession",),
    "mcp_acl.agent.loop": ("Agent", "AgentSettings", "LoopLimits", "TaskResult", "ToolLoop", "ToolSide"),
    "mcp_acl.agent.model": ("OllamaModel",),
    "mcp_acl.agent.tool_format": ("ollama_tool", "ollama_tools"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'mcp_acl.agent' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)


async def run_task(task: str, *, model: str, token: str | None = None, client_id: str | None = None,
                   client_secret: str | None = None, on_event: EventHandler | None = None,
                   **settings: Any) -> TaskResult:
    """Run one task with a fresh agent: `settings` are `AgentSettings` fields (gateway_url, max_rounds, …)."""
    from mcp_acl.agent.credentials import token_source
    from mcp_acl.agent.loop import Agent, AgentSettings

    agent_settings = AgentSettings(model=model, **settings)
    tokens = token_source(agent_settings.gateway_url, token=token, client_id=client_id, client_secret=client_secret)
    async with Agent(agent_settings, tokens, on_event=on_event) as agent:
        return await agent.ask(task)


__all__ = sorted([*_HOME, "DEFAULT_MAX_CALLS_PER_TURN", "DEFAULT_MAX_REPEATS", "DEFAULT_MAX_ROUNDS", "DEFAULT_NUM_CTX",
                  "run_task"])
