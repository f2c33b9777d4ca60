"""A scripted stand-in for Ollama that speaks its HTTP API on loopback.

It answers `/api/chat` (NDJSON stream by default, one JSON object with
`"stream": false`), `/api/tags`, `/api/show` (with `capabilities`) and
`/api/version` the way Ollama does, including its error bodies
(`{"error": "..."}`: 400 for a model without tools, 404 for a model that is
not pulled, 500/503, and an error line under a 200 stream). Each chat request
gets the next scripted turn; every request body is recorded for assertions.

It can also misbehave the way Ollama-compatible servers and proxies do:
tool-call arguments as raw JSON text (`call_raw("x", 'null')`), and bodies
that are not Ollama's API at all (`raw("<html>…", status=502)` for a chat,
`show_raw=` for `/api/show`).

    double = OllamaDouble([call("notes.read", path="a.md"), say("Done.")])
    with LoopbackServer(double.app) as url:
        client = ollama.AsyncClient(host=url)
        ...
    double.chats[1]["messages"][-1]   # the tool message the agent sent back
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

OLLAMA_VERSION = "0.12.6"
ROLES = {"system", "user", "assistant", "tool"}


@dataclass(frozen=True)
class Turn:
    """One scripted model reply: text, tool calls, or an error."""

    content: str = ""
    tool_calls: tuple[tuple[str, Any], ...] = ()
    thinking: str = ""
    # Not 200: the whole request fails with this status and {"error": error}.
    status: int = 200
    # With status 200: the stream breaks off with an error line after `content`.
    error: str | None = None
    # Set: the chat is answered with exactly this body instead (see `raw`).
    raw: RawBody | None = None


@dataclass(frozen=True)
class RawBody:
    """An answer sent byte for byte, e.g. a proxy's HTML error page."""

    body: str
    status: int = 200
    media_type: str = "text/html"


class RawJSON(str):
    """Tool-call arguments written into the wire verbatim: `RawJSON("null")`, `RawJSON('"{\\"a\\": 1}"')`."""


def say(text: str, *, thinking: str = "") -> Turn:
    """A turn that answers with text."""
    return Turn(content=text, thinking=thinking)


def call(name: str, arguments: Any = None, /, **kwargs: Any) -> Turn:
    """A turn with one tool call: `call("files.read", path="a.md")` or `call("x", {...})`."""
    return Turn(tool_calls=((name, arguments if arguments is not None else kwargs),))


def call_raw(name: str, arguments_json: str) -> Turn:
    """A turn with one tool call whose `arguments` are this JSON text on the wire, e.g. `null`."""
    return Turn(tool_calls=((name, RawJSON(arguments_json)),))


def raw(body: str, *, status: int = 200, media_type: str = "text/html") -> Turn:
    """A turn answered with a body that is not Ollama's API (an HTML page, plain text, …)."""
    return Turn(raw=RawBody(body, status, media_type))


def calls(*pairs: tuple[str, Any]) -> Turn:
    """A turn with several tool calls in one assistant message."""
    return Turn(tool_calls=tuple(pairs))


def fail(status: int, message: str) -> Turn:
    """A turn that fails with an HTTP status and Ollama's error body."""
    return Turn(status=status, error=message)


def break_off(message: str, after: str = "") -> Turn:
    """A turn whose stream starts (200, some text) and then carries an error line."""
    return Turn(content=after, error=message)


@dataclass(frozen=True)
class ModelCard:
    """A model the double pretends to have pulled."""

    name: str
    capabilities: tuple[str, ...] = ("completion", "tools")
    family: str = "qwen3"
    parameter_size: str = "4.0B"
    context_length: int = 40960


DEFAULT_MODELS = (
    ModelCard("qwen3:4b", ("completion", "tools", "thinking")),
    ModelCard("gemma2:2b", ("completion",), family="gemma2", parameter_size="2.6B"),
)


@dataclass
class Recorded:
    """One request as the double received it."""

    method: str
    path: str
    body: Any


def full_name(model: str) -> str:
    """Ollama's canonical name: `qwen3` → `qwen3:latest`."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def registry_name(model: str) -> str:
    """The name Ollama uses in capability errors: `registry.ollama.ai/library/qwen3:4b`."""
    name = full_name(model)
    return name if "/" in name else f"registry.ollama.ai/library/{name}"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@dataclass
class OllamaDouble:
    """The scripted server: `app` is the ASGI app, `requests` what it received."""

    script: list[Turn] = field(default_factory=list)
    models: Sequence[ModelCard] = DEFAULT_MODELS
    requests: list[Recorded] = field(default_factory=list)
    # Set: `/api/show` answers with exactly this body.
    show_raw: RawBody | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/", self._root, methods=["GET", "HEAD"]),
                Route("/api/version", self._version, methods=["GET"]),
                Route("/api/tags", self._tags, methods=["GET"]),
                Route("/api/show", self._show, methods=["POST"]),
                Route("/api/chat", self._chat, methods=["POST"]),
            ]
        )

    @property
    def chats(self) -> list[dict[str, Any]]:
        """The bodies of every `/api/chat` request, in order."""
        return [r.body for r in self.requests if r.path == "/api/chat"]

    def add(self, *turns: Turn) -> None:
        """Append turns to the script (e.g. between two tasks)."""
        with self._lock:
            self.script.extend(turns)

    def _card(self, model: str) -> ModelCard | None:
        name = full_name(model)
        return next((m for m in self.models if full_name(m.name) == name), None)

    def _next_turn(self) -> Turn | None:
        with self._lock:
            return self.script.pop(0) if self.script else None

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(Recorded(request.method, request.url.path, body))
        return body

    async def _root(self, request: Request) -> Response:
        self.requests.append(Recorded(request.method, "/", None))
        return PlainTextResponse("Ollama is running")

    async def _version(self, request: Request) -> Response:
        self.requests.append(Recorded("GET", "/api/version", None))
        return JSONResponse({"version": OLLAMA_VERSION})

    async def _tags(self, request: Request) -> Response:
        self.requests.append(Recorded("GET", "/api/tags", None))
        return JSONResponse({"models": [self._tag(m) for m in self.models]})

    def _details(self, card: ModelCard) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": card.family,
            "families": [card.family],
            "parameter_size": card.parameter_size,
            "quantization_level": "Q4_K_M",
        }

    def _tag(self, card: ModelCard) -> dict[str, Any]:
        name = full_name(card.name)
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-09-30T10:00:00.000000000Z",
            "size": 2_497_293_931,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": self._details(card),
        }

    async def _show(self, request: Request) -> Response:
        body = await self._body(request)
        if self.show_raw is not None:
            return _raw_response(self.show_raw)
        if not isinstance(body, dict):
            return _error(400, "invalid request body")
        model = body.get("model") or body.get("name") or ""
        card = self._card(model) if model else None
        if card is None:
            return _error(404, f"model '{model}' not found")
        return JSONResponse(
            {
                "license": "Apache License 2.0",
                "modelfile": f"FROM {full_name(card.name)}\n",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ .Prompt }}",
                "details": self._details(card),
                "model_info": {
                    "general.architecture": card.family,
                    "general.parameter_count": 4_022_468_096,
                    f"{card.family}.context_length": card.context_length,
                },
                "capabilities": list(card.capabilities),
                "modified_at": "2025-09-30T10:00:00.000000000Z",
            }
        )

    async def _chat(self, request: Request) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            return _error(400, "invalid character in request body")
        model = body.get("model") or ""
        if not model:
            return _error(400, "model is required")
        card = self._card(model)
        if card is None:
            return _error(404, f"model '{model}' not found")
        problem = _message_problem(body.get("messages"), body.get("tools"))
        if problem:
            return _error(400, problem)
        if body.get("tools") and "tools" not in card.capabilities:
            return _error(400, f"{registry_name(model)} does not support tools")
        stream = body.get("stream")
        stream = True if stream is None else bool(stream)
        if not body.get("messages"):
            return JSONResponse(
                {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                 "done": True, "done_reason": "load"}
            )
        turn = self._next_turn()
        if turn is None:
            return _error(500, "ollama double: the script has no turn left for this request")
        if turn.raw is not None:
            return _raw_response(turn.raw)
        if turn.status != 200:
            return _error(turn.status, turn.error or "error")
        if not stream:
            if turn.error is not None:
                return _error(500, turn.error)
            return Response(_dumps(self._whole(model, turn, body)), media_type="application/json")
        return StreamingResponse(self._chunks(model, turn, body), media_type="application/x-ndjson")

    def _final(self, model: str, body: dict[str, Any], eval_count: int) -> dict[str, Any]:
        prompt_tokens = max(1, len(json.dumps(body.get("messages", []))) // 4)
        return {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_250_000_000,
            "load_duration": 50_000_000,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 200_000_000,
            "eval_count": max(1, eval_count),
            "eval_duration": 900_000_000,
        }

    def _whole(self, model: str, turn: Turn, body: dict[str, Any]) -> dict[str, Any]:
        out = self._final(model, body, len(_pieces(turn.content)))
        message: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if turn.thinking:
            message["thinking"] = turn.thinking
        if turn.tool_calls:
            message["tool_calls"] = _tool_calls(turn)
        out["message"] = message
        return out

    def _chunks(self, model: str, turn: Turn, body: dict[str, Any]) -> Iterator[bytes]:
        def line(message: dict[str, Any]) -> bytes:
            chunk = {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": "", **message},
                     "done": False}
            return (_dumps(chunk) + "\n").encode()

        for piece in _pieces(turn.thinking):
            yield line({"thinking": piece})
        for piece in _pieces(turn.content):
            yield line({"content": piece})
        if turn.error is not None:
            yield (json.dumps({"error": turn.error}) + "\n").encode()
            return
        if turn.tool_calls:
            yield line({"tool_calls": _tool_calls(turn)})
        yield (json.dumps(self._final(model, body, len(_pieces(turn.content)))) + "\n").encode()


def _raw_response(raw: RawBody) -> Response:
    return Response(raw.body, status_code=raw.status, media_type=raw.media_type)


def _dumps(value: Any) -> str:
    """JSON text in which each `RawJSON` string stands as the JSON it holds."""
    spliced: list[str] = []

    def mark(node: Any) -> Any:
        if isinstance(node, RawJSON):
            spliced.append(str(node))
            return f"\0raw{len(spliced) - 1}\0"
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(value))
    for i, piece in enumerate(spliced):
        text = text.replace(json.dumps(f"\0raw{i}\0"), piece)
    return text


def _pieces(text: str) -> list[str]:
    # Ollama streams a token or so per line; words are close enough.
    return re.findall(r"\s*\S+\s*", text) if text.strip() else ([text] if text else [])


def _tool_calls(turn: Turn) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{i:08x}", "function": {"index": i, "name": name, "arguments": arguments}}
        for i, (name, arguments) in enumerate(turn.tool_calls)
    ]


def _message_problem(messages: Any, tools: Any) -> str | None:
    # The Go server rejects what it cannot unmarshal; these are the shapes an agent gets wrong.
    if messages is None:
        return None
    if not isinstance(messages, list):
        return "json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"invalid message: {json.dumps(message)[:200]}"
        for tool_call in message.get("tool_calls") or []:
            arguments = (tool_call.get("function") or {}).get("arguments")
            if not isinstance(arguments, dict):
                return ("json: cannot unmarshal string into Go struct field "
                        "ToolCallFunction.messages.tool_calls.function.arguments of type map[string]interface {}")
    for tool in tools or []:
        if not isinstance(tool, dict) or not (tool.get("function") or {}).get("name"):
            return f"invalid tool: {json.dumps(tool)[:200]}"
    return None
