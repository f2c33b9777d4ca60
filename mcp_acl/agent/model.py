"""The model side: one Ollama model reached through the real `ollama.AsyncClient`.

Replies are streamed (Ollama's default) and gathered into one `ModelReply`;
Ollama's errors become `AgentError`s that say what to do: start Ollama, pull
the model, pick a model that can call tools. An answer that is not Ollama's
API (an HTML error page, a proxy's plain text) is one such error too.

Ollama-compatible servers send tool-call arguments in more shapes than
Ollama does, and the client's own models reject all but an object, so the
chat stream is read as plain JSON and each call's arguments are taken here:

    an object  {"path": "a.md"}               → {"path": "a.md"}
    a string   "{\\"path\\": \\"a.md\\"}"         → {"path": "a.md"}
    null, [1], "[1]", "oops"                  → not sent; the model is told why (`ToolCallRequest.problem`)
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import ollama

from mcp_acl.agent import DEFAULT_NUM_CTX
from mcp_acl.agent.errors import ModelNotPulled, ModelWithoutTools, OllamaFailed, OllamaUnreachable

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"

TextSink = Callable[[str], Awaitable[None] | None]


def ollama_url(override: str | None = None) -> str:
    """`--ollama-url`, else `OLLAMA_HOST`, else Ollama's default address."""
    return override or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_URL


# How much of an error body a message quotes.
_QUOTED = 200


@dataclass(frozen=True)
class ToolCallRequest:
    """One tool call as the model asked for it; `problem` says why it cannot be sent at all."""

    name: str
    arguments: Any
    # Set when the call cannot be put to the gateway: MCP carries only an
    # object as arguments. E.g. "null" or "a string that is not JSON".
    problem: str | None = None


@dataclass(frozen=True)
class ModelReply:
    """One assistant turn: its text and the tool calls it asks for."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = field(default_factory=tuple)
    # The closing object of the stream without its message: done_reason, durations, token counts.
    final: Mapping[str, Any] = field(default_factory=dict)

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
                 options: dict[str, Any] | None = None, client: ollama.AsyncClient | None = None,
                 chat_fields: Mapping[str, Any] | None = None, stream: bool = True) -> None:
        self.model = model
        self.url = ollama_url(url)
        self.options = {**(options or {}), "num_ctx": num_ctx}
        # A client shared by many models (the Ollama endpoint's, from `chat_client`) stays open on exit.
        self._owned = client is None
        self._client = client if client is not None else chat_client(self.url)
        # More of Ollama's chat fields for every request: think, format, keep_alive.
        self.chat_fields = dict(chat_fields or {})
        # False: each reply comes whole (no text as it streams), for a caller that shows nothing until the end.
        self.stream = stream

    async def __aenter__(self) -> "OllamaModel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owned:
            await self._client.close()

    async def check(self) -> None:
        """Fail early, with the fix, when Ollama is down, the model missing, or unable to call tools."""
        try:
            shown = await self._client.show(self.model)
        except Exception as exc:
            raise self._translate(exc, "/api/show") from None
        # Older Ollama versions report no capabilities; the chat request will tell then.
        if shown.capabilities is not None and "tools" not in shown.capabilities:
            raise ModelWithoutTools(self.model)

    async def reply(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]],
                    on_text: TextSink | None = None, on_thinking: TextSink | None = None) -> ModelReply:
        """Send the conversation and the tools; gather the streamed answer into one reply."""
        content: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCallRequest] = []
        final: dict[str, Any] = {}
        try:
            answer = await self._client.chat(
                self.model, messages=list(messages), tools=list(tools) or None, stream=self.stream,
                options=self.options, **self.chat_fields,
            )
            stream = answer if self.stream else _one(answer)
        except Exception as exc:
            # Nothing is read yet (the client builds the request here): a ValueError is not the server's.
            raise self._translate(exc, None) from None
        try:
            while True:
                # Only the client's own work is translated: a failure in `on_text` is not Ollama's.
                try:
                    part = await anext(stream)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._translate(exc, "/api/chat") from None
                message = self._message_of(part)
                if message.get("thinking"):
                    thinking.append(str(message["thinking"]))
                    await _tell(on_thinking, str(message["thinking"]))
                if message.get("content"):
                    content.append(str(message["content"]))
                    await _tell(on_text, str(message["content"]))
                calls.extend(_tool_call(raw) for raw in message.get("tool_calls") or ())
                if part.get("done"):
                    final = {k: v for k, v in part.items() if k != "message"}
        finally:
            # Closed here, in this task: a stream left open when the answer is refused
            # (a wrong shape, a failing `on_text`) is closed by the garbage collector
            # in another task, and that prints a traceback.
            await stream.aclose()
        return ModelReply("".join(content), "".join(thinking), tuple(calls), final)

    def _message_of(self, part: Mapping[str, Any]) -> Mapping[str, Any]:
        """The `message` of one streamed chat object, checked for the shape Ollama gives it."""
        message = part.get("message") or {}
        if not isinstance(message, Mapping) or not isinstance(message.get("tool_calls") or [], list):
            raise self._not_the_api("/api/chat", "a chat message of the wrong shape")
        return message

    def _translate(self, exc: Exception, path: str | None) -> Exception:
        """Ollama's failures as errors a user can act on; anything unknown passes through unchanged.

        `path` names the endpoint whose answer was being read, if any.
        """
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return OllamaUnreachable(self.url)
        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error)
            if text.lstrip().startswith("<"):
                return self._not_the_api(path or "a request", f"an HTML page with status {exc.status_code}")
            if exc.status_code == 404 and "not found" in text:
                return ModelNotPulled(self.model)
            if "does not support tools" in text:
                return ModelWithoutTools(self.model)
            if exc.status_code == -1:
                return OllamaFailed(f"Ollama failed while answering with {self.model!r}: {_one_line(text)}")
            return OllamaFailed(f"Ollama answered {exc.status_code} for {self.model!r}: {_one_line(text)}")
        if isinstance(exc, httpx.TransportError):
            return OllamaFailed(f"the connection to Ollama at {self.url} broke: {type(exc).__name__}")
        # Raised inside the client while it reads the body: not JSON (JSONDecodeError),
        # not an object (TypeError, AttributeError), or not the fields Ollama sends (ValidationError).
        # JSON nested deeper than the decoder recurses raises RecursionError.
        if path is not None and isinstance(exc, ValueError | TypeError | AttributeError | RecursionError):
            return self._not_the_api(path, "a body that is not Ollama's JSON")
        return exc

    def _not_the_api(self, path: str, what: str) -> OllamaFailed:
        return OllamaFailed(
            f"the server at {self.url} answered {path} with {what}, not Ollama's API: "
            "is --ollama-url (or OLLAMA_HOST) pointing at Ollama?"
        )


async def _one(part: Any):
    # A whole answer (stream=False) read like a stream of one part.
    yield part


def chat_client(url: str) -> ollama.AsyncClient:
    """The `ollama` client a model talks through (chat answers kept as plain JSON, see `_RawChatClient`)."""
    return _RawChatClient(host=url)


async def _tell(sink: TextSink | None, text: str) -> None:
    if sink is not None:
        shown = sink(text)
        if shown is not None:
            await shown


class _RawChat(dict):
    """One streamed chat object exactly as it arrived (the client's `ChatResponse` would reject some)."""

    def __init__(self, **part: Any) -> None:
        super().__init__(part)


class _RawChatClient(ollama.AsyncClient):
    """The real client, except that chat answers come back as plain JSON objects.

    The client validates every streamed line with its `ChatResponse` model,
    whose tool-call arguments must be an object: an Ollama-compatible server
    that sends them as a JSON string (or null) made it raise mid-stream.
    `_request` is the client's one hook that turns the JSON into a model.
    """

    async def _request(self, cls: Any, *args: Any, **kwargs: Any) -> Any:
        return await super()._request(_RawChat if cls is ollama.ChatResponse else cls, *args, **kwargs)


def _tool_call(raw: Any) -> ToolCallRequest:
    """One entry of `message.tool_calls` as a request; a shape MCP cannot carry gets a `problem`."""
    function = raw.get("function") if isinstance(raw, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        return ToolCallRequest("", {}, "it named no tool")
    arguments = function.get("arguments")
    if isinstance(arguments, Mapping):
        return ToolCallRequest(name, dict(arguments))
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments)
        except ValueError:
            return ToolCallRequest(name, arguments, "a string that is not JSON")
        except RecursionError:
            return ToolCallRequest(name, arguments, "a string holding JSON nested too deeply")
        if isinstance(decoded, dict):
            return ToolCallRequest(name, decoded)
        return ToolCallRequest(name, arguments, f"a string holding {_json_kind(decoded)}")
    return ToolCallRequest(name, arguments, _json_kind(arguments))


def _json_kind(value: Any) -> str:
    """`null`, `a list`, `a number`, … for the sentence the model reads."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _one_line(text: str) -> str:
    """An error body as one short line: whitespace collapsed, cut at `_QUOTED` characters."""
    line = " ".join(text.split())
    return line if len(line) <= _QUOTED else line[: _QUOTED - 1] + "…"
