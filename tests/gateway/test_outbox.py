"""list_changed notices wait for a 2025-11-25 session's GET stream instead of being dropped."""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.streamable_http import GET_STREAM_KEY

from mcp_acl.gateway.outbox import Outboxes, StreamTable
from mcp_acl.gateway.sessions import SessionStore

from .harness import cli, get_stream_open, serve, wait_for
from .test_notifier import _recorder


@asynccontextmanager
async def _client_holding_its_get_stream(url: str, token: str, heard: list[str], release: anyio.Event):
    """The SDK's client (2025-11-25), whose GET stream request waits until `release` is set."""

    async def hold_get(request: httpx2.Request) -> None:
        if request.method == "GET":
            await release.wait()

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300), event_hooks={"request": [hold_get]}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy", message_handler=_recorder(heard)) as client:
            yield client


async def test_revoke_before_the_get_stream_opens_is_heard_once_it_opens(world, subprocess_env):
    gateway = world.gateway()
    heard: list[str] = []
    release = anyio.Event()
    with serve(world, gateway) as live:
        async with _client_holding_its_get_stream(live.mcp_url, world.token("alice"), heard, release) as alice:
            await alice.list_tools()
            session_id = next(r.id for r in SessionStore(world.engine).live())
            revoked = cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url)
            assert revoked.returncode == 0, revoked.stderr
            # The notifier has found the change; with no GET stream yet, the notice waits.
            await wait_for(lambda: gateway.outboxes.pending(session_id))
            assert heard == []
            release.set()
            await get_stream_open(live, session_id)
            await wait_for(lambda: heard)
            assert gateway.outboxes.pending(session_id) == frozenset()
    assert heard == ["notifications/tools/list_changed"]


async def test_the_sdk_registers_the_get_stream_where_the_gateway_watches(sqlite_world):
    # The outbox relies on the SDK's private `_request_streams` (mcp 2.3): this fails if that changes.
    with serve(sqlite_world) as live:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {sqlite_world.token('bob')}"}) as http:
            async with Client(streamable_http_client(live.mcp_url, http_client=http), mode="legacy") as bob:
                await bob.list_tools()
                session_id = next(r.id for r in SessionStore(sqlite_world.engine).live())
                await get_stream_open(live, session_id)
                streams = live.app.state.session_manager._server_instances[session_id]._request_streams
                assert isinstance(streams, StreamTable) and GET_STREAM_KEY in streams


async def test_a_get_stream_opened_before_the_session_is_watched_still_counts():
    # The client opens its GET right after `notifications/initialized`, which is what gets a session watched.
    outboxes = Outboxes()
    sent: list[str] = []

    async def send(kind: str) -> None:
        sent.append(kind)

    async with anyio.create_task_group() as tg:
        await tg.start(outboxes.run)
        outboxes.stream_changed("s1", True)
        post = outboxes.open("s1", send)
        await post("tools")
        await wait_for(lambda: sent)
        tg.cancel_scope.cancel()
    assert sent == ["tools"]


async def test_an_outbox_holds_one_notice_per_kind_until_the_stream_opens():
    outboxes = Outboxes()
    sent: list[str] = []

    async def send(kind: str) -> None:
        sent.append(kind)

    async with anyio.create_task_group() as tg:
        await tg.start(outboxes.run)
        post = outboxes.open("s1", send)
        for kind in ("prompts", "tools", "prompts", "tools", "resources", "tools"):
            await post(kind)
        assert outboxes.pending("s1") == {"tools", "resources", "prompts"}
        await anyio.wait_all_tasks_blocked()
        assert sent == []
        outboxes.stream_changed("s1", True)
        await wait_for(lambda: len(sent) == 3)
        # Open stream: the next notice goes straight out.
        await post("resources")
        await wait_for(lambda: len(sent) == 4)
        # Closed again (the client reconnects): held again, until it reopens.
        outboxes.stream_changed("s1", False)
        await post("tools")
        await anyio.wait_all_tasks_blocked()
        assert sent == ["tools", "resources", "prompts", "resources"]
        outboxes.stream_changed("s1", True)
        await wait_for(lambda: len(sent) == 5)
        tg.cancel_scope.cancel()
    assert sent == ["tools", "resources", "prompts", "resources", "tools"]


async def test_a_closed_outbox_is_forgotten():
    outboxes = Outboxes()

    async def send(kind: str) -> None:
        raise AssertionError("nothing may be sent for a session that ended")

    async with anyio.create_task_group() as tg:
        await tg.start(outboxes.run)
        outboxes.stream_changed("s1", True)
        post = outboxes.open("s1", send)
        outboxes.stream_changed("s1", False)
        await post("tools")
        outboxes.close("s1")
        # Too late: the session ended, whatever the notifier or the transport still says.
        await post("resources")
        outboxes.stream_changed("s1", False)
        await anyio.wait_all_tasks_blocked()
        assert outboxes.pending("s1") == frozenset()
        tg.cancel_scope.cancel()


async def test_an_outbox_made_by_a_stream_that_registered_after_its_session_ended_is_dropped():
    # The SDK can register a GET stream a moment after the session was discarded
    # (the request was already inside the transport); its closing is the last word.
    outboxes = Outboxes()
    outboxes.close("s1")
    outboxes.stream_changed("s1", True)
    outboxes.stream_changed("s1", False)
    assert "s1" not in outboxes._boxes
