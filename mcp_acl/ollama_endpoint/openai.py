"""POST /ollama/v1/chat/completions: the same governed chat in OpenAI's Chat Completions shape.

Ollama serves this API too (its OpenAI compatibility); here it runs the
same tool loop as /api/chat, so an app built on an OpenAI client
(`base_url=http://HOST:8000/ollama/v1`, the token as its API key) gets the
same governed tools. The request is turned into Ollama's chat request and
checked by the same rules (own `tools` refused); the answer comes back as
a `chat.completion` object, or with `"stream": true` as server-sent
`chat.completion.chunk` events ending in `data: [DONE]`. Thinking streams
as `delta.reasoning`, as Ollama's own compatibility layer sends it.

What is taken from the request: `model`, `messages` (text parts joined;
images as base64 `data:` URLs), `stream`, `temperature`, `top_p`, `seed`,
`max_tokens` / `max_completion_tokens`, `stop`, and `response_format`
(`json_object`, or a `json_schema`).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from mcp_acl.agent.loop import TaskResult
from mcp_acl.ollama_endpoint.answer import AnswerWriter, Emit
from mcp_acl.ollama_endpoint.chat import BadChat, ChatRequest

_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "max_tokens": "num_predict",
            "max_completion_tokens": "num_predict", "stop": "stop"}
_ROLES = {"developer": "system"}


def openai_request(body: Any) -> ChatRequest:
    """An OpenAI chat request as the endpoint's ChatRequest; raises BadChat."""
    if not isinstance(body, dict):
        raise BadChat("the request body must be a JSON object")
    if body.get("tools") or body.get("functions"):
        raise BadChat("this endpoint offers the model only the tools mcp-acl governs for you; send the chat without `tools`")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadChat("messages must be a non-empty list")
    options = {ours: body[theirs] for theirs, ours in _OPTIONS.items() if body.get(theirs) is not None}
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    ollama_body: dict[str, Any] = {
        "model": body.get("model"), "messages": [_message(m) for m in messages],
        "stream": body.get("stream") is True, "options": options,
    }
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_object":
            ollama_body["format"] = "json"
        elif response_format.get("type") == "json_schema":
            ollama_body["format"] = (response_format.get("json_schema") or {}).get("schema")
    return ChatRequest(ollama_body)


def _message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise BadChat("invalid message: each must be an object")
    role = _ROLES.get(message.get("role"), message.get("role"))
    out: dict[str, Any] = {"role": role}
    content = message.get("content")
    if isinstance(content, list):
        texts, images = [], []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                images.append(_image(part.get("image_url")))
            else:
                raise BadChat(f"invalid message: content parts of type {kind!r} are not supported")
        out["content"] = "\n".join(texts)
        if images:
            out["images"] = images
    else:
        out["content"] = content if content is not None else ""
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [_tool_call(c) for c in calls]
    return out


def _image(image_url: Any) -> str:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise BadChat("invalid message: images must be base64 data: URLs (nothing is fetched)")
    return url.split(";base64,", 1)[1]


def _tool_call(call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = None
    return {"function": {"name": function.get("name") if isinstance(function, dict) else None, "arguments": parsed}}


class CompletionWriter(AnswerWriter):
    """Writes the answer as OpenAI's chat.completion (or its chunks)."""

    media_type = b"text/event-stream"

    def __init__(self, model: str, emit: Emit | None) -> None:
        super().__init__(model, emit)
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self._first = True

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    def piece(self, field: str, text: str) -> bytes:
        delta = {"content": text} if field == "content" else {"reasoning": text}
        if self._first:
            delta = {"role": "assistant", **delta}
            self._first = False
        return self._chunk(delta)

    def finish(self, result: TaskResult) -> bytes:
        self._stopped(result)
        final = dict(result.last_reply.final) if result.last_reply is not None else {}
        reason = "length" if final.get("done_reason") == "length" else "stop"
        usage = {"prompt_tokens": final.get("prompt_eval_count", 0), "completion_tokens": final.get("eval_count", 0)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        extra = {"mcp_acl": {"tool_calls": self.calls}}
        if self.emit is not None:
            return self._chunk({}, reason, usage=usage, **extra) + b"data: [DONE]\n\n"
        completion = {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text}, "finish_reason": reason}],
            "usage": usage, **extra,
        }
        return json.dumps(completion, ensure_ascii=False).encode()

    @staticmethod
    def error_line(message: str) -> bytes:
        return b"data: " + CompletionWriter.error_body(message) + b"\n\n"

    @staticmethod
    def error_body(message: str) -> bytes:
        return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}).encode()
