"""A graceful shutdown's two halves at the HTTP edge: refuse what is new, end what stays open.

While the gateway drains (`CallLedger.draining`, set by `serve` on SIGTERM
or SIGINT), a new request to /mcp gets 503 and `Retry-After`, so a load
balancer or client goes elsewhere; a DELETE that ends a session is still
served. Once the running calls are done, `end_streams` closes every session
(its row marked closed, its GET stream ended) and every listen stream, so
the server is not left waiting for connections that would stay open.
"""

from __future__ import annotations

import json
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
        await self.app(scope, receive, send)


async def end_streams(manager: GatewaySessionManager, server: GatewayServer) -> None:
    """Close every open session and listen stream of this process."""
    if server.listen_streams is not None:
        server.listen_streams.close()
    ended = await manager.close_all()
    if ended:
        log.info("closed %d open session(s) for shutdown", ended)
