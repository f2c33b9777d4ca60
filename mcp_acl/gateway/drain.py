"""A graceful shutdown's two halves at the HTTP edge: refuse what is new, end what stays open.

While the gateway drains (`CallLedger.draining`, set by `serve` on SIGTERM
or SIGINT), a new request to /mcp gets 503 and `Retry-After`, so a load
balancer or client goes elsewhere; a DELETE that ends a session is still
served. The POST requests being answered are counted, since a call's answer
is still being written after its handler returned. `end_listen_streams`
ends the 2026-07-28 listen streams as the drain starts (they are POSTs that
would never finish); once the calls are done, `end_sessions` closes every
session (its row marked closed, its GET stream ended), so the server is
not left waiting for connections that would stay open.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_acl.gateway.calls import CallLedger
from mcp_acl.gateway.server import GatewayServer
from mcp_acl.gateway.transport import GatewaySessionManager

log = logging.getLogger(__name__)

SHUTTING_DOWN = b'{"error": "shutting_down", "error_description": "this server is shutting down; try again"}'


class RefuseWhileDraining:
    """ASGI wrapper: 503 for new requests once the gateway drains."""

    def __init__(self, app: ASGIApp, calls: CallLedger) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.calls.draining and scope["type"] == "http" and scope.get("method") != "DELETE":
            await send({
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(SHUTTING_DOWN)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            })
            await send({"type": "http.response.body", "body": SHUTTING_DOWN})
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        self.calls.requests += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.calls.requests -= 1


def end_listen_streams(server: GatewayServer) -> None:
    """End every 2026-07-28 listen stream gracefully (the client is told the stream ended, and may listen elsewhere)."""
    if server.listen_streams is not None:
        server.listen_streams.close()


async def end_sessions(manager: GatewaySessionManager) -> None:
    """Close every session open in this process."""
    ended = await manager.close_all()
    if ended:
        log.info("closed %d open session(s) for shutdown", ended)
