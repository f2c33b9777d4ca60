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
from collections.abc import Callable
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
from mcp_acl.ollama_endpoint.answer import AnswerWriter, Emit
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
            problem = _message_problem(message)
            if problem:
                raise BadChat(f"invalid message: {problem}")
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


def _message_problem(message: dict[str, Any]) -> str | None:
    # What the `ollama` client would reject with an exception of its own, said as Ollama's 400 would.
    if not isinstance(message.get("content", ""), str | None):
        return "content must be text"
    images = message.get("images")
    if images is not None and (not isinstance(images, list) or not all(isinstance(i, str) for i in images)):
        return "images must be a list of base64 strings"
    calls = message.get("tool_calls")
    if calls is None:
        return None
    if not isinstance(calls, list):
        return "tool_calls must be a list"
    for tool_call in calls:
        function = tool_call.get("function") if isinstance(tool_call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) \
                or not isinstance(function.get("arguments", {}), dict):
            return "each tool call needs a function with a name and an object of arguments"
    return None


def _said(exc: BaseException) -> str:
    # An AgentError's sentence is written for users; anything else is a bug, told in general words only.
    return str(exc) if isinstance(exc, AgentError) else INTERNAL


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
                 limits: LoopLimits = LoopLimits(), *, parse: Callable[[Any], ChatRequest] = ChatRequest,
                 writer: type[AnswerWriter] = AnswerWriter) -> None:
        self.gateway = gateway
        self.front_ends = front_ends
        self.client = client
        self.upstream = upstream
        self.limits = limits
        # The dialect: how a request is read and the answer written (Ollama's here, OpenAI's in openai.py).
        self.parse = parse
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            raw = await read_body(receive)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise BadChat("the request body is not JSON") from None
            request = self.parse(body)
            identity = await self.front_ends.resolve(scope[IDENTITY_KEY], scope.get("headers", []), self.gateway.invoker.policies)
        except BadChat as exc:
            await self._error(send, 400, str(exc))
            return
        except BodyTooLarge as exc:
            await self._error(send, 413, str(exc))
            return
        except CallerRefused as exc:
            await self._error(send, exc.status, str(exc))
            return
        token_id = scope.get(TOKEN_ID_KEY)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_disconnect, receive, tg.cancel_scope)
            await self._answer(send, request, identity, token_id)
            tg.cancel_scope.cancel()

    async def _answer(self, send: Send, request: ChatRequest, identity: Identity, token_id: str | None) -> None:
        if not request.stream:
            # One object: sent whole, with its length.
            item = await self._produce(request, identity, token_id, None)
            if isinstance(item, BaseException):
                await self._fail(send, item)
                return
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(item)).encode())]})
            await send({"type": "http.response.body", "body": item})
            return
        tx, rx = anyio.create_memory_object_stream[bytes | BaseException](math.inf)

        async def produce() -> None:
            with tx:
                tx.send_nowait(await self._produce(request, identity, token_id, tx.send_nowait))

        started = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with rx:
                async for item in rx:
                    if isinstance(item, BaseException):
                        if not started:
                            await self._fail(send, item)
                            return
                        # Once streaming, as Ollama does: an error line under the 200.
                        await send({"type": "http.response.body", "body": self.writer.error_line(_said(item)), "more_body": True})
                        break
                    if not started:
                        started = True
                        await send({"type": "http.response.start", "status": 200,
                                    "headers": [(b"content-type", self.writer.media_type)]})
                    await send({"type": "http.response.body", "body": item, "more_body": True})
        if started:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _produce(self, request: ChatRequest, identity: Identity, token_id: str | None,
                       emit: Emit | None) -> bytes | BaseException:
        """Run the chat; its closing line (after `emit` streamed the rest), or the failure to report."""
        try:
            writer = self.writer(request.model, emit)
            result = await self._run(request, identity, token_id, writer)
            return writer.finish(result)
        except AgentError as exc:
            return exc
        except Exception as exc:
            log.exception("an Ollama endpoint chat failed")
            return exc

    async def _fail(self, send: Send, exc: BaseException) -> None:
        await self._error(send, status_of(exc) if isinstance(exc, AgentError) else 500, _said(exc))

    async def _error(self, send: Send, status: int, message: str) -> None:
        await error_response(send, status, message, self.writer.error_body(message))

    async def _run(self, request: ChatRequest, identity: Identity, token_id: str | None,
                   writer: AnswerWriter) -> TaskResult:
        # An app that does not stream reads nothing before the end: each round comes whole, which is cheaper.
        model = OllamaModel(request.model, self.upstream, num_ctx=request.num_ctx, options=request.options,
                            client=self.client, chat_fields=request.chat_fields, stream=request.stream)
        loop = ToolLoop(model, LocalGateway(self.gateway, identity, token_id), self.limits,
                        on_event=writer.on_event, on_thinking=writer.on_thinking)
        await loop.refresh()
        return await loop.run(request.messages)
