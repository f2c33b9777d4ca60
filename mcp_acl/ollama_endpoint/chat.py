"""POST /ollama/api/chat: the app's chat, run through the tool loop as its caller.

    app's request ──► caller (token, or a trusted front-end's user) ──► catalogue + access-policy prompt
        ──► ToolLoop (agent/loop.py): model round on the real Ollama, each tool call admitted
            in-process (decide → audit → run), results back to the model, until it answers
        ──► Ollama's chat answer to the app (NDJSON stream, or one object with "stream": false)

The request is Ollama's: `model`, `messages`, `stream`, `options`, `think`,
`format`, `keep_alive` are used; a request with its own `tools` is refused
(400): the model may call only the tools mcp-acl governs. The app's
messages are kept as sent (its own system message included), after the
access-policy system message. An error before the answer starts comes back
as Ollama's `{"error": "…"}` with a status; once streaming, as an error
line, as Ollama does.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import anyio
import ollama
from starlette.types import Receive, Scope, Send

from mcp_acl.agent import DEFAULT_NUM_CTX
from mcp_acl.agent.errors import (
    AgentError,
    GatewayFailed,
    ModelNotPulled,
    ModelWithoutTools,
)
from mcp_acl.agent.loop import LoopLimits, TaskResult, ToolLoop
from mcp_acl.agent.model import OllamaModel
from mcp_acl.auth.middleware import IDENTITY_KEY, TOKEN_ID_KEY
from mcp_acl.gateway.runtime import Gateway
from mcp_acl.ollama_endpoint.answer import AnswerWriter, line
from mcp_acl.ollama_endpoint.callers import CallerRefused, FrontEnds
from mcp_acl.ollama_endpoint.http import BodyTooLarge, error_response, read_body, watch_disconnect
from mcp_acl.ollama_endpoint.tools import LocalGateway
from mcp_acl.policy import Identity

log = logging.getLogger(__name__)

ROLES = frozenset({"system", "user", "assistant", "tool"})
# Fields of Ollama's chat request handed on to every model round as they came.
_PASSED = ("think", "format", "keep_alive")
APP_TOOLS = ("this endpoint offers the model only the tools mcp-acl governs for you; "
             "send the chat without `tools` (turn off the app's own tools or native function calling)")
INTERNAL = "mcp-acl failed with an internal error while answering this chat"


class BadChat(Exception):
    """A chat request this endpoint cannot take (400)."""


class ChatRequest:
    """The parts of Ollama's chat request the endpoint uses, checked."""

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BadChat("the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadChat("model is required")
        if body.get("tools"):
            raise BadChat(APP_TOOLS)
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise BadChat("messages must be a list")
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise BadChat(f"invalid message: each needs a role of {', '.join(sorted(ROLES))}")
            if not isinstance(message.get("content", ""), str | None):
                raise BadChat("invalid message: content must be text")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadChat("options must be an object")
        num_ctx = options.get("num_ctx", DEFAULT_NUM_CTX)
        if not isinstance(num_ctx, int) or isinstance(num_ctx, bool) or num_ctx < 1:
            raise BadChat("options.num_ctx must be a positive integer")
        self.body = body
        self.model = model
        self.messages: list[dict[str, Any]] = [dict(m) for m in messages]
        self.stream = body.get("stream") is not False
        self.options = options
        self.num_ctx = num_ctx
        self.chat_fields = {k: body[k] for k in _PASSED if body.get(k) is not None}


def status_of(exc: AgentError) -> int:
    """The HTTP status an app gets for a failure before the answer started."""
    if isinstance(exc, ModelNotPulled):
        return 404
    if isinstance(exc, ModelWithoutTools):
        return 400
    if isinstance(exc, GatewayFailed):
        return 503
    return 502  # Ollama unreachable or failing: the upstream's fault, as a gateway reports it


class ChatEndpoint:
    """The ASGI app for /ollama/api/chat (behind the bearer guard, which put the identity in the scope)."""

    def __init__(self, gateway: Gateway, front_ends: FrontEnds, client: ollama.AsyncClient, upstream: str,
                 limits: LoopLimits = LoopLimits()) -> None:
        self.gateway = gateway
        self.front_ends = front_ends
        self.client = client
        self.upstream = upstream
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            raw = await read_body(receive)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise BadChat("the request body is not JSON") from None
            request = ChatRequest(body)
            identity = await self.front_ends.resolve(scope[IDENTITY_KEY], scope.get("headers", []), self.gateway.invoker.policies)
        except BadChat as exc:
            await error_response(send, 400, str(exc))
            return
        except BodyTooLarge as exc:
            await error_response(send, 413, str(exc))
            return
        except CallerRefused as exc:
            await error_response(send, exc.status, str(exc))
            return
        token_id = scope.get(TOKEN_ID_KEY)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_disconnect, receive, tg.cancel_scope)
            await self._answer(send, request, identity, token_id)
            tg.cancel_scope.cancel()

    async def _answer(self, send: Send, request: ChatRequest, identity: Identity, token_id: str | None) -> None:
        tx, rx = anyio.create_memory_object_stream[bytes | BaseException](math.inf)

        async def produce() -> None:
            with tx:
                try:
                    writer = AnswerWriter(request.model, tx.send_nowait if request.stream else None)
                    result = await self._run(request, identity, token_id, writer)
                    tx.send_nowait(line(writer.closing(result)))
                except AgentError as exc:
                    tx.send_nowait(exc)
                except Exception as exc:
                    log.exception("an Ollama endpoint chat failed")
                    tx.send_nowait(exc)

        started = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with rx:
                async for item in rx:
                    if isinstance(item, BaseException):
                        text = str(item) if isinstance(item, AgentError) else INTERNAL
                        if started:
                            await send({"type": "http.response.body", "body": line({"error": text}), "more_body": True})
                        else:
                            await error_response(send, status_of(item) if isinstance(item, AgentError) else 500, text)
                            return
                        break
                    if not started:
                        started = True
                        kind = b"application/x-ndjson" if request.stream else b"application/json; charset=utf-8"
                        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
                    await send({"type": "http.response.body", "body": item, "more_body": True})
        if started:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _run(self, request: ChatRequest, identity: Identity, token_id: str | None,
                   writer: AnswerWriter) -> TaskResult:
        model = OllamaModel(request.model, self.upstream, num_ctx=request.num_ctx, options=request.options,
                            client=self.client, chat_fields=request.chat_fields)
        loop = ToolLoop(model, LocalGateway(self.gateway, identity, token_id), self.limits,
                        on_event=writer.on_event, on_thinking=writer.on_thinking)
        await loop.refresh()
        return await loop.run(request.messages)
