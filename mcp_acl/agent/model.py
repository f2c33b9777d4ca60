"""The model side: one Ollama model reached through the real `ollama.AsyncClient`.

Replies are streamed (Ollama's default) and gathered into one `ModelReply`;
Ollama's errors become `AgentError`s that say what to do: start Ollama, pull
the model, pick a model that can call tools.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import ollama

from mcp_acl.agent import DEFAULT_NUM_CTX
from mcp_acl.agent.errors import AgentError, ModelNotPulled, ModelWithoutTools, OllamaFailed, OllamaUnreachable

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"

TextSink = Callable[[str], Awaitable[None] | None]


def ollama_url(override: str | None = None) -> str:
    """`--ollama-url`, else `OLLAMA_HOST`, else Ollama's default address."""
    return override or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_URL


@dataclass(frozen=True)
class ToolCallRequest:
    """One tool call as the model asked for it."""

    name: str
    arguments: Any


@dataclass(frozen=True)
class ModelReply:
    """One assistant turn: its text and the tool calls it asks for."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = field(default_factory=tuple)

    def as_message(self) -> dict[str, Any]:
        """The assistant message to keep in the conversation (thinking left out to save context)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments if isinstance(c.arguments, dict) else {}}}
                for c in self.tool_calls
            ]
        return message


class OllamaModel:
    """A chat model on Ollama; use as `async with OllamaModel(...) as model`."""

    def __init__(self, model: str, url: str | None = None, *, num_ctx: int = DEFAULT_NUM_CTX,
                 options: dict[str, Any] | None = None) -> None:
        self.model = model
        self.url = ollama_url(url)
        self.options = {**(options or {}), "num_ctx": num_ctx}
        self._client = ollama.AsyncClient(host=self.url)

    async def __aenter__(self) -> "OllamaModel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()

    async def check(self) -> None:
        """Fail early, with the fix, when Ollama is down, the model missing, or unable to call tools."""
        try:
            shown = await self._client.show(self.model)
        except Exception as exc:
            raise self._translate(exc) from None
        # Older Ollama versions report no capabilities; the chat request will tell then.
        if shown.capabilities is not None and "tools" not in shown.capabilities:
            raise ModelWithoutTools(self.model)

    async def reply(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]],
                    on_text: TextSink | None = None) -> ModelReply:
        """Send the conversation and the tools; gather the streamed answer into one reply."""
        content: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCallRequest] = []
        try:
            stream = await self._client.chat(
                self.model, messages=list(messages), tools=list(tools) or None, stream=True, options=self.options
            )
            async for part in stream:
                message = part.message
                if message.thinking:
                    thinking.append(message.thinking)
                if message.content:
                    content.append(message.content)
                    if on_text is not None:
                        shown = on_text(message.content)
                        if shown is not None:
                            await shown
                for call in message.tool_calls or ():
                    calls.append(ToolCallRequest(call.function.name, dict(call.function.arguments)))
        except AgentError:
            raise
        except Exception as exc:
            raise self._translate(exc) from None
        return ModelReply("".join(content), "".join(thinking), tuple(calls))

    def _translate(self, exc: Exception) -> Exception:
        """Ollama's failures as errors a user can act on; anything unknown passes through unchanged."""
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return OllamaUnreachable(self.url)
        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error)
            if exc.status_code == 404 and "not found" in text:
                return ModelNotPulled(self.model)
            if "does not support tools" in text:
                return ModelWithoutTools(self.model)
            if exc.status_code == -1:
                return OllamaFailed(f"Ollama failed while answering with {self.model!r}: {text}")
            return OllamaFailed(f"Ollama answered {exc.status_code} for {self.model!r}: {text}")
        if isinstance(exc, httpx.TransportError):
            return OllamaFailed(f"the connection to Ollama at {self.url} broke: {type(exc).__name__}")
        return exc
