"""The chat messages the agent sends Ollama: system prompt, tool results, refusals.

Tool results go back as `{"role": "tool", "content": …, "tool_name": …}` with
all text content joined; an `isError` result is said plainly, so a small
model cannot mistake a refusal for data:

    CallToolResult(is_error=True, content=[TextContent(text="Refused: no grant allows …")])
    → "ERROR: the gateway refused this call. Refused: no grant allows …"
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import (
    AudioContent,
    CallToolResult,
    EmbeddedResource,
    GetPromptResult,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from mcp_acl.prompting import REFUSAL_PREFIX, UNKNOWN_TOOL_PREFIX

# How the gateway starts its answer to arguments that do not fit the schema
# (mcp_acl/gateway/invocation.py); the call was decided and audited, then not run.
_INVALID_ARGUMENTS = "Invalid arguments for "

# Used when the gateway offers no access-policy prompt for this identity.
FALLBACK_SYSTEM = (
    "You are an assistant working through tools on behalf of the user. Use only the tools you are given. "
    "A tool result starting with ERROR means the call was refused or failed: read the reason, do not repeat "
    "the same call, and either try an allowed alternative or tell the user what you could not do."
)


def system_message(text: str) -> dict[str, Any]:
    """The system message for the chat."""
    return {"role": "system", "content": text}


def user_message(text: str) -> dict[str, Any]:
    """A user turn."""
    return {"role": "user", "content": text}


def tool_message(tool_name: str, content: str) -> dict[str, Any]:
    """The answer to one tool call, as Ollama expects it."""
    return {"role": "tool", "content": content, "tool_name": tool_name}


def prompt_text(result: GetPromptResult) -> str:
    """All text of a prompt's messages, joined: the access-policy prompt becomes the system message."""
    parts = []
    for message in result.messages:
        content = message.content
        if isinstance(content, TextContent):
            parts.append(content.text)
        elif isinstance(content, EmbeddedResource) and isinstance(content.resource, TextResourceContents):
            parts.append(content.resource.text)
    return "\n\n".join(p.strip() for p in parts if p.strip())


def result_text(result: CallToolResult) -> str:
    """Every text part of a tool result, joined; other parts named; an error said plainly."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource {resource.uri} omitted]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        elif isinstance(block, ImageContent | AudioContent):
            parts.append(f"[{block.type} ({block.mime_type}) omitted]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts).strip() or "(no output)"
    if not result.is_error:
        return text
    if is_refusal(result):
        return f"ERROR: the gateway refused this call. {text}"
    return f"ERROR: the tool failed: {text}"


def is_refusal(result: CallToolResult) -> bool:
    """Whether an error result is the gateway's refusal rather than the tool's own failure."""
    # The gateway's refusal sentence starts with REFUSAL_PREFIX; a hidden or missing
    # tool is answered "No tool named NAME is available to you. …" (mcp_acl/prompting.py).
    return result.is_error is True and _first_text(result).startswith((REFUSAL_PREFIX, UNKNOWN_TOOL_PREFIX))


def is_invalid_arguments(result: CallToolResult) -> bool:
    """Whether an error result is the gateway saying the arguments do not fit the tool's schema."""
    return result.is_error is True and _first_text(result).startswith(_INVALID_ARGUMENTS)


def invalid_arguments_text(result: CallToolResult) -> str:
    """What the model reads when the gateway found its arguments wrong: the reason, and what to do."""
    reason = _first_text(result).rstrip(".")
    return f"ERROR: the gateway did not run this call. {reason}. Call it again with corrected arguments."


def _first_text(result: CallToolResult) -> str:
    return next((b.text for b in result.content if isinstance(b, TextContent)), "")


def gateway_error_text(message: str) -> str:
    """A tool message for a protocol-level error the gateway returned instead of a result."""
    return f"ERROR: the gateway could not run this call: {message}"


def stopped_text() -> str:
    """The answer recorded for calls left unrun when the loop ends early."""
    return "ERROR: not run: the agent stopped before this call."


def over_cap_text(cap: int) -> str:
    """The answer to each call beyond the per-turn cap, e.g. the 9th of 12 calls with a cap of 8."""
    return (f"ERROR: not run: at most {cap} tool calls are run per turn, so make this call again "
            "in your next turn if you still need it.")


def unsendable_text(name: str, problem: str) -> str:
    """The answer to a call the MCP protocol cannot carry (its arguments are not a JSON object)."""
    if not name:
        return "ERROR: not run: the tool call named no tool, so call one of your tools by its name."
    return (f"ERROR: not run: the arguments for {name} must be a JSON object, but they were {problem}, "
            "so call it again with an object.")
