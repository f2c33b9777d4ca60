"""What an upstream says besides results: list_changed (followed, and passed on to exactly the sessions
whose view changed), progress (reaching the caller who asked for it), and a caller's cancellation (reaching
the upstream, audited); and the legacy HTTP+SSE transport. Real SDK upstreams on loopback, the real gateway,
the SDK's real client."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from mcp import Client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from auth.support import LoopbackServer  # tests/auth/support.py
from gateway.harness import cli, connect, get_stream_open, serve, sqlite_world, text_of, wait_for  # noqa: F401 (fixture)
from gateway.test_notifier import _recorder, _session_of
from mcp_acl.store import PolicyAdmin
from tests.upstream.upstream_server import Seen, legacy_only, tracker
from tests.upstream.test_gateway_upstreams import register, tool_names


@pytest.fixture
def seen() -> Seen:
    """What the upstream saw."""
    return Seen()


@pytest.fixture
def upstream_url(seen) -> Iterator[str]:
    """The tracker upstream over Streamable HTTP on loopback: its /mcp URL."""
    with LoopbackServer(tracker(seen).streamable_http_app(), lifespan="on") as base:
        yield f"{base}/mcp"


async def test_an_upstreams_list_changed_reaches_exactly_the_sessions_whose_view_changed(sqlite_world, subprocess_env, upstream_url):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream_url)
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:analyst", "tool:tracker.echo")  # alice
    admin.add_grant("role:intern", "tool:tracker.greeting")  # bob
    heard_alice: list[str] = []
    heard_bob: list[str] = []
    with serve(world) as live:
        async with (
            connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard_alice)) as alice,
            connect(live.mcp_url, world.token("bob"), message_handler=_recorder(heard_bob)) as bob,
        ):
            assert await tool_names(alice, "tracker.") == {"tracker.echo"}
            assert await tool_names(bob, "tracker.") == {"tracker.greeting"}
            await get_stream_open(live, _session_of(world, "alice"))
            await get_stream_open(live, _session_of(world, "bob"))
            # The upstream stops offering echo and announces it, on its own (no refresh, no restart).
            async with Client(upstream_url) as direct:
                assert text_of(await direct.call_tool("retire", {"tool": "echo"})) == "retired echo"
            await wait_for(lambda: heard_alice)
            assert await tool_names(alice, "tracker.") == set()
            gone = await alice.call_tool("tracker.echo", {"text": "hi"})
            assert gone.is_error and text_of(gone).startswith("No tool named tracker.echo is available to you")
            # bob's view did not change, so he was told nothing. A later change of his own is
            # his first notification: the re-evaluation that told alice had finished before it.
            admin.add_grant("role:intern", "tool:tracker.fail")
            await wait_for(lambda: heard_bob)
            assert await tool_names(bob, "tracker.") == {"tracker.greeting", "tracker.fail"}
    assert heard_alice == ["notifications/tools/list_changed"]
    assert heard_bob == ["notifications/tools/list_changed"]


async def test_a_new_tool_announced_by_an_upstream_is_read_but_withheld_until_approved(sqlite_world, subprocess_env, upstream_url):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream_url)
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:tracker.*")
    heard: list[str] = []
    gateway = world.gateway()
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard)) as alice:
            before = await tool_names(alice, "tracker.")
            await get_stream_open(live, _session_of(world, "alice"))
            async with Client(upstream_url) as direct:
                await direct.call_tool("offer", {"tool": "leak"})
                # Then a pinned tool goes: one re-read after both, or two in order; either way the
                # list alice is told about has echo gone and no unapproved leak.
                await direct.call_tool("retire", {"tool": "echo"})
            await wait_for(lambda: heard)
            assert await tool_names(alice, "tracker.") == before - {"tracker.echo"}
    assert "tracker.leak" not in gateway.catalogue.tools


async def test_changes_are_still_heard_after_the_upstream_closes_its_listen_stream(sqlite_world, subprocess_env, upstream_url):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream_url)
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:tracker.echo")
    heard: list[str] = []
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard)) as alice:
            assert await tool_names(alice, "tracker.") == {"tracker.echo"}
            await get_stream_open(live, _session_of(world, "alice"))
            async with Client(upstream_url) as direct:
                # The upstream ends the gateway's stream gracefully; a change after that still arrives.
                await direct.call_tool("end_streams", {})
                await direct.call_tool("retire", {"tool": "echo"})
            await wait_for(lambda: heard)
            assert await tool_names(alice, "tracker.") == set()


async def test_a_handshake_era_upstream_announcing_a_change_is_followed_too(sqlite_world, subprocess_env, seen):
    """An upstream of the 2025-11-25 era sends list_changed on its session, unasked (no listen stream)."""
    world = sqlite_world
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:analyst", "tool:tracker.echo")
    admin.add_grant("role:analyst", "tool:tracker.retire")
    heard: list[str] = []
    with LoopbackServer(legacy_only(tracker(seen).streamable_http_app()), lifespan="on") as base:
        register(world, subprocess_env, "tracker", "--url", f"{base}/mcp")
        gateway = world.gateway()
        with serve(world, gateway) as live:
            async with connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard)) as alice:
                assert gateway.upstreams.connections["tracker"].client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
                assert await tool_names(alice, "tracker.") == {"tracker.echo", "tracker.retire"}
                await get_stream_open(live, _session_of(world, "alice"))
                # Through mcp-acl: the upstream drops echo and says so on the gateway's own session.
                assert text_of(await alice.call_tool("tracker.retire", {"tool": "echo"})) == "retired echo"
                await wait_for(lambda: heard)
                assert await tool_names(alice, "tracker.") == {"tracker.retire"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_progress_of_a_forwarded_call_reaches_the_caller_who_asked(sqlite_world, subprocess_env, upstream_url, mode):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream_url)
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:tracker.count")
    got: list[tuple] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        got.append((done, total, message))

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), mode=mode) as alice:
            result = await alice.call_tool("tracker.count", {"steps": 3}, progress_callback=progress)
            assert (result.is_error, text_of(result)) == (False, "counted to 3")
            await wait_for(lambda: len(got) == 3)
            assert got == [(1, 3, "step 1 of 3"), (2, 3, "step 2 of 3"), (3, 3, "step 3 of 3")]
            # Without a progress callback the call is the same, and nothing is reported.
            assert text_of(await alice.call_tool("tracker.count", {"steps": 2})) == "counted to 2"
    assert len(got) == 3


async def test_a_cancelled_forwarded_call_is_cancelled_upstream_and_audited(sqlite_world, subprocess_env, upstream_url, seen):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream_url)
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:analyst", "tool:tracker.hang")
    admin.add_grant("role:analyst", "tool:tracker.echo")
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            async with anyio.create_task_group() as tg:
                tg.start_soon(alice.call_tool, "tracker.hang", {})
                await wait_for(seen.hang_started.is_set)
                tg.cancel_scope.cancel()
            # The upstream saw its call cancelled, and the gateway goes on serving.
            await wait_for(seen.hang_ended.is_set)
            assert text_of(await alice.call_tool("tracker.echo", {"text": "after"})) == "echo: after"
    rows = world.audit_rows(target="tool:tracker.hang")
    assert [r.decision for r in rows if r.decision] == ["allow"]
    # Like any tool that does not complete: an allowed call whose outcome is error.
    assert [r.outcome for r in rows if r.outcome] == ["error"]


@pytest.fixture
def sse_url(seen) -> Iterator[str]:
    """The tracker upstream over the legacy HTTP+SSE transport on loopback: its /sse URL."""
    with LoopbackServer(tracker(seen).sse_app(), lifespan="on") as base:
        yield f"{base}/sse"


async def test_an_upstream_on_the_legacy_sse_transport(sqlite_world, subprocess_env, sse_url, seen):
    world = sqlite_world
    register(world, subprocess_env, "old", "--url", sse_url, "--sse", "--timeout", "2")
    admin = PolicyAdmin(world.engine)
    for tool in ("echo", "count", "hang"):
        admin.add_grant("role:analyst", f"tool:old.{tool}")
    got: list[tuple] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        got.append((done, total, message))

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("bob")) as bob:
            assert await tool_names(alice, "old.") == {"old.echo", "old.count", "old.hang"}
            assert await tool_names(bob, "old.") == set()
            assert text_of(await alice.call_tool("old.echo", {"text": "hi"})) == "echo: hi"
            assert text_of(await alice.call_tool("old.count", {"steps": 2}, progress_callback=progress)) == "counted to 2"
            await wait_for(lambda: len(got) == 2)
            hung = await alice.call_tool("old.hang", {})
            assert (hung.is_error, text_of(hung)) == (True, 'the upstream "old" did not answer within 2 s; try again later')
            assert text_of(await alice.call_tool("old.echo", {"text": "again"})) == "echo: again"
    shown = cli(subprocess_env, "upstream", "show", "old", "--database", world.database_url)
    assert '"transport": "sse"' in shown.stdout, shown.stdout
