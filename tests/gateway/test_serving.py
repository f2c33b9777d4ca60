"""The HTTP serving stack of `mcp-acl serve`: Nagle off on every connection, uvloop and httptools, both eras.

The server here is built exactly as `serve` builds it (`bind` and
`server_config`), run in a thread so the test can look at the server side
of each accepted connection. A plain `httpx` keep-alive client reads every
response to its end; with Nagle on, the last small write of a response
(the chunked terminator after an SSE event, the body after JSON headers)
waited for that client's delayed ACK, about 40 ms per call.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
import uvicorn
from mcp.server.subscriptions import ToolsListChanged

from mcp_acl.app import create_app
from mcp_acl.cli.serve import bind, listen_url, server_config
from mcp_acl.gateway.sessions import SessionStore

from .harness import cli, connect, get_stream_open, text_of, wait_for

ACCEPT = {"Accept": "application/json, text/event-stream"}
META_2026 = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "plain", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@dataclass
class Served:
    """A running server: its /mcp URL, uvicorn's server object and the app."""

    url: str
    server: uvicorn.Server
    app: Any


@contextmanager
def served_like_cli(world, **stack: str) -> Iterator[Served]:
    """The real app on `bind()`'s socket under `server_config()` (with `stack` overrides), in a thread."""
    app = create_app(world.settings, world.engine, gateway=world.gateway())
    sock = bind("127.0.0.1", 0)
    url = listen_url(sock)
    server = uvicorn.Server(server_config(app, **stack))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield Served(url, server, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def plain_calls(http: httpx.Client, url: str) -> list[httpx.Response]:
    """A 2025-11-25 session and a 2026-07-28 call from plain httpx on one keep-alive connection."""
    legacy = {"Mcp-Protocol-Version": "2025-11-25"}
    init = http.post(url, headers=legacy, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "plain", "version": "1"}}})
    legacy["Mcp-Session-Id"] = init.headers["mcp-session-id"]
    http.post(url, headers=legacy, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = {"name": "files.list", "arguments": {}}
    in_session = http.post(url, headers=legacy, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
    modern = {"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "files.list"}
    sessionless = http.post(url, headers=modern, json={
        "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {**call, "_meta": META_2026}})
    return [init, in_session, sessionless]


def server_sockets(server: uvicorn.Server) -> list:
    """The server side of every open connection (uvicorn's protocol objects hold the transports)."""
    return [conn.transport.get_extra_info("socket") for conn in server.server_state.connections]


@pytest.mark.parametrize("stack", [{}, {"loop": "asyncio", "http": "h11"}], ids=["as-served", "asyncio-h11"])
def test_plain_keep_alive_client_is_served_with_nagle_off(sqlite_world, stack):
    world = sqlite_world
    with served_like_cli(world, **stack) as served:
        with httpx.Client(headers={"Authorization": f"Bearer {world.token('alice')}", **ACCEPT}, timeout=30) as http:
            responses = plain_calls(http, served.url)
            # Still open: the one keep-alive connection all the calls went over.
            (conn,) = server_sockets(served.server)
            nodelay = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all('"isError":false' in r.text and "reports" in r.text for r in responses[1:])
    # The forms stay: an SSE stream in a 2025-11-25 session, plain JSON on 2026-07-28.
    assert responses[1].headers["content-type"] == "text/event-stream"
    assert responses[2].headers["content-type"] == "application/json"
    # Without it the chunked terminator after the SSE event waits ~40 ms for the client's delayed ACK.
    assert nodelay != 0


def test_bind_makes_a_tcp_socket_so_asyncio_turns_nagle_off():
    # asyncio sets TCP_NODELAY only on sockets whose protocol number is TCP;
    # accepted sockets copy it from the listener.
    sock = bind("127.0.0.1", 0)
    with sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_serve_runs_on_uvloop_and_httptools(sqlite_world):
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    with served_like_cli(sqlite_world) as served:
        with httpx.Client(timeout=30) as http:
            assert http.get(served.url.removesuffix("/mcp") + "/healthz").json()["status"] == "ok"
            (conn,) = served.server.server_state.connections
            assert isinstance(conn, HttpToolsProtocol)
            assert isinstance(conn.loop, uvloop.Loop)


def _session_of(world, subject: str) -> str:
    return next(r.id for r in SessionStore(world.engine).live() if r.subject == subject)


def test_sdk_client_and_list_changed_work_in_both_eras_as_served(sqlite_world, subprocess_env):
    world = sqlite_world
    heard: list[str] = []

    async def record(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.append(message.method)

    with served_like_cli(world) as served:
        url = served.url

        async def both_eras():
            async with (
                connect(url, world.token("alice"), message_handler=record) as legacy,
                connect(url, world.token("alice"), mode="auto") as modern,
                modern.listen(tools_list_changed=True) as changes,
            ):
                called = [await legacy.call_tool("files.list", {}), await modern.call_tool("files.list", {})]
                await legacy.list_tools()
                await get_stream_open(served, _session_of(world, "alice"))
                revoked = cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url)
                assert revoked.returncode == 0, revoked.stderr
                with anyio.fail_after(10):
                    event = await anext(aiter(changes))
                await wait_for(lambda: heard)
                return legacy.protocol_version, modern.protocol_version, called, event

        legacy_era, modern_era, called, event = anyio.run(both_eras)
    assert (legacy_era, modern_era) == ("2025-11-25", "2026-07-28")
    assert all(not r.is_error and "reports" in text_of(r) for r in called)
    assert isinstance(event, ToolsListChanged)
    assert heard == ["notifications/tools/list_changed"]


def test_a_forwarded_for_header_does_not_change_the_address_refusals_are_counted_by(sqlite_world):
    # uvicorn trusts X-Forwarded-For from loopback peers by default: a local
    # flood naming a new address each time would be written a row per try.
    world = sqlite_world
    with served_like_cli(world) as served:
        with httpx.Client(headers={"Authorization": "Bearer not.a.token", **ACCEPT}, timeout=30) as http:
            answers = [
                http.post(served.url, headers={"X-Forwarded-For": f"203.0.113.{n}"}, json={"jsonrpc": "2.0", "id": n, "method": "tools/list"})
                for n in range(1, 6)
            ]
    assert {a.status_code for a in answers} == {401}
    rows = world.audit_rows(kind="authentication")
    assert all("203.0.113" not in row.reason for row in rows)
    assert rows[0].reason.endswith("(from 127.0.0.1)")
