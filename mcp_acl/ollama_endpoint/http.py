"""Plain ASGI pieces of the Ollama endpoint: bodies, Ollama-shaped errors, and forwarding to the real Ollama."""

from __future__ import annotations

import json

import anyio
import httpx
from starlette.types import Receive, Scope, Send

# A chat with a few images stays far below this; anything larger is refused, not buffered.
MAX_BODY = 64 * 1024 * 1024
# Headers of Ollama's answer handed back to the app; nothing else (and the app's token never goes upstream).
_ANSWER_HEADERS = {"content-type"}


class BodyTooLarge(Exception):
    """The request body is larger than MAX_BODY."""


async def read_body(receive: Receive) -> bytes:
    """The whole request body; raises BodyTooLarge."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge(f"the request body is larger than {MAX_BODY // (1024 * 1024)} MB")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def error_response(send: Send, status: int, message: str, body: bytes | None = None) -> None:
    """Ollama's error shape, `{"error": "…"}`, with the status; `body` when the dialect shapes it otherwise."""
    body = body if body is not None else json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def watch_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel `scope` when the client goes away (the body was read already), so a chat nobody reads stops."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


class Forwarder:
    """An endpoint Ollama answers itself (tags, version, show, ps): the request goes upstream as it came."""

    def __init__(self, http: httpx.AsyncClient, upstream: str, path: str) -> None:
        self.http = http
        self.upstream = upstream.rstrip("/")
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(receive)
        except BodyTooLarge as exc:
            await error_response(send, 413, str(exc))
            return
        content_type = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"content-type"), None)
        headers = {"content-type": content_type} if content_type else {}
        try:
            answer = await self.http.request(scope["method"], self.upstream + self.path, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            await error_response(send, 502, f"cannot reach Ollama at {self.upstream} ({type(exc).__name__})")
            return
        kept = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items() if k.lower() in _ANSWER_HEADERS]
        kept.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else answer.content})
