"""A plain `httpx` MCP client for the benchmarks: tools/call on one keep-alive connection.

Unlike the SDK's client, which stops reading an SSE response at the
JSON-RPC answer, it reads every response to its end, as most HTTP clients
do: the client that waited for a delayed ACK while the server left Nagle
on (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager


class PlainClient:
    """tools/call from plain `httpx` on one keep-alive connection, reading each response to its end."""

    def __init__(self, http, url: str, era: str) -> None:
        self.http, self.url, self.era = http, url, era
        self.headers = {"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": era}
        self.next_id = 0

    async def _post(self, message: dict, headers: dict | None = None):
        response = await self.http.post(self.url, json={"jsonrpc": "2.0", **message}, headers={**self.headers, **(headers or {})})
        if response.status_code not in (200, 202):
            raise RuntimeError(f"the plain client got HTTP {response.status_code}: {response.text[:200]}")
        return response

    async def start(self) -> None:
        if self.era != "2025-11-25":
            return  # 2026-07-28: no handshake, no session
        params = {"protocolVersion": self.era, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
        response = await self._post({"id": 0, "method": "initialize", "params": params})
        self.headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
        await self._post({"method": "notifications/initialized"})

    async def call(self) -> float:
        self.next_id += 1
        params: dict = {"name": "bench.echo", "arguments": {"text": "hi"}}
        headers = {}
        if self.era != "2025-11-25":
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": self.era,
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            headers = {"Mcp-Method": "tools/call", "Mcp-Name": "bench.echo"}
        started = time.perf_counter()
        response = await self._post({"id": self.next_id, "method": "tools/call", "params": params}, headers)
        elapsed = (time.perf_counter() - started) * 1000
        if '"isError":false' not in response.text:
            raise RuntimeError(f"the plain client's call failed: {response.text[:200]}")
        return elapsed


@asynccontextmanager
async def plain_client(url: str, token: str | None, era: str):
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        client = PlainClient(http, url, era)
        await client.start()
        yield client
