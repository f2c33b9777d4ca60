"""The routes under /ollama, each behind the same bearer-token guard as /mcp."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_acl.agent.model import chat_client
from mcp_acl.auth.middleware import RefusalHook, RevokedCheck, protect
from mcp_acl.auth.verifier import AccessTokenVerifier
from mcp_acl.config import Settings
from mcp_acl.gateway.drain import RefuseWhileDraining
from mcp_acl.gateway.runtime import Gateway
from mcp_acl.ollama_endpoint import EndpointSettings
from mcp_acl.ollama_endpoint.callers import FrontEnds
from mcp_acl.ollama_endpoint.chat import ChatEndpoint
from mcp_acl.ollama_endpoint.http import Forwarder, error_response
from mcp_acl.ollama_endpoint.openai import CompletionWriter, openai_request

PREFIX = "/ollama"
# Ollama's read-only endpoints an app uses to find and describe models: (path, methods).
FORWARDED = (
    ("/api/tags", ["GET"]),
    ("/api/ps", ["GET"]),
    ("/api/version", ["GET"]),
    ("/api/show", ["POST"]),
    ("/v1/models", ["GET"]),
    ("/", ["GET", "HEAD"]),
)
NOT_SERVED = ("mcp-acl's Ollama endpoint serves /api/chat and /v1/chat/completions (governed), /api/tags, /api/ps, "
              "/api/version, /api/show and /v1/models; pulling, deleting or creating models, and unguarded generation, are not served here")


async def _not_served(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(send, 404, NOT_SERVED)


def ollama_routes(
    config: EndpointSettings, gateway: Gateway, settings: Settings, verifier: AccessTokenVerifier, *,
    on_refused: RefusalHook | None = None, revoked: RevokedCheck | None = None,
) -> tuple[list[Route], Callable[[], Awaitable[None]]]:
    """The /ollama routes, and what closes their connections to Ollama at shutdown."""
    # No timeout on reads: a large model can take minutes before its first token.
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
    chat_http = chat_client(config.upstream)
    front_ends = FrontEnds(gateway.engine, config.trusted_client, config.user_header)

    def guarded(app: ASGIApp) -> ASGIApp:
        return RefuseWhileDraining(protect(app, verifier, settings, on_refused=on_refused, revoked=revoked), gateway.calls)

    routes = [
        Route(PREFIX + "/api/chat", guarded(ChatEndpoint(gateway, front_ends, chat_http, config.upstream)), methods=["POST"]),
        Route(PREFIX + "/v1/chat/completions", guarded(ChatEndpoint(
            gateway, front_ends, chat_http, config.upstream, parse=openai_request, writer=CompletionWriter)), methods=["POST"]),
    ]
    for path, methods in FORWARDED:
        forward = guarded(Forwarder(http, config.upstream, path))
        # The root answers with and without its slash: `OLLAMA_HOST=…/ollama` asks for `/ollama`.
        for served in {PREFIX + path, PREFIX + path.rstrip("/")}:
            routes.append(Route(served, forward, methods=methods))
    routes.append(Route(PREFIX + "/{rest:path}", guarded(_not_served)))

    async def close() -> None:
        await http.aclose()
        await chat_http.close()

    return routes, close
