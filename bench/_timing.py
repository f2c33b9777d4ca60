"""Pieces the HTTP benchmarks share: serve an app in a child process, the SDK client, timed call pairs, p99.

bench/gateway.py and bench/upstream.py both compare two servers called in
turn by one client process; what they have in common lives here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any


def run_app(app, ready_file: str, loop: str, http: str) -> None:
    """Serve `app` on 127.0.0.1 as `mcp-acl serve` serves (its socket and uvicorn settings); port to `ready_file`."""
    import uvicorn

    from mcp_acl.cli.serve import bind, server_config

    sock = bind("127.0.0.1", 0)
    Path(ready_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(server_config(app, loop=loop, http=http, log_level="error")).run(sockets=[sock])


def mint_token(engine, settings, user: str, client_id: str = "bench-cli") -> str:
    """A real access token for `user` from the embedded issuer (an hour long)."""
    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.tokens import mint_access_token

    keys = SigningKeys(engine)
    keys.ensure_active()
    return mint_access_token(
        keys, issuer=settings.embedded_issuer_url, audience=settings.resource_url,
        subject=user, client_id=client_id, scopes=["mcp"], ttl=timedelta(hours=1),
    )


@asynccontextmanager
async def sdk_client(url: str, token: str | None) -> AsyncIterator[Any]:
    """The SDK's client on `url` (2025-11-25 sessions), with `token` as a bearer token if given."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


def echo_call(tool: str) -> Callable[[Any], Awaitable[float]]:
    """A timer of one `tool` call with {"text": "hi"}, in milliseconds; an error result stops the benchmark."""

    async def timed(client) -> float:
        started = time.perf_counter()
        result = await client.call_tool(tool, {"text": "hi"})
        elapsed = (time.perf_counter() - started) * 1000
        if result.is_error:
            raise RuntimeError(f"the benchmark call failed: {result.content[0].text}")
        return elapsed

    return timed


async def time_pairs(first, second, pairs: int, call, second_call=None) -> tuple[list[float], list[float]]:
    """Time `call` on each of two clients, call by call, each first in every other pair: a noisy
    neighbour on the shared machine slows both alike. `second_call` times the second if it differs."""
    second_call = second_call or call
    first_times, second_times = [], []
    for i in range(pairs):
        if i % 2:
            first_times.append(await call(first))
            second_times.append(await second_call(second))
        else:
            second_times.append(await second_call(second))
            first_times.append(await call(first))
    return first_times, second_times


def p99(times: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
