"""Upstreams added or removed while a gateway serves join or leave it without a restart, and its health is visible from the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from gateway.harness import cli, connect, get_stream_open, serve, sqlite_world, text_of, wait_for  # noqa: F401 (fixture)
from gateway.test_notifier import _recorder, _session_of
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.upstream_status import read_statuses
from tests.upstream.test_gateway_upstreams import SERVER_SCRIPT, _closed_port, http_upstream, seen, tool_names  # noqa: F401 (fixtures)
from tests.upstream.test_pinning import live_upstream  # noqa: F401 (fixture)
from tests.upstream.test_add_probe import TRACKER_TOOLS
from tests.upstream.upstream_server import add_tool

LIST_CHANGED = "notifications/tools/list_changed"

# How many tools the test upstream offers (other tests add tools to it).
N = len(TRACKER_TOOLS)


def listed(world, env) -> dict[str, dict]:
    """`upstream list --json`, run in another process while the gateway serves, by name."""
    done = cli(env, "upstream", "list", "--json", "--database", world.database_url)
    assert done.returncode == 0, done.stderr
    return {u["name"]: u for u in json.loads(done.stdout)}


def state_of(world, name: str) -> str | None:
    with world.engine.connect() as conn:
        status = read_statuses(conn, [name]).get(name)
    return status.state if status else None


async def test_an_upstream_added_and_removed_while_serving_joins_and_leaves(sqlite_world, subprocess_env, http_upstream):
    world = sqlite_world
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:tracker.*")
    gateway = world.gateway()
    alice_heard: list[str] = []
    bob_heard: list[str] = []
    with serve(world, gateway) as live:
        async with (
            connect(live.mcp_url, world.token("alice"), message_handler=_recorder(alice_heard)) as alice,
            connect(live.mcp_url, world.token("bob"), message_handler=_recorder(bob_heard)) as bob,
        ):
            assert await tool_names(alice, "tracker.") == set()
            await get_stream_open(live, _session_of(world, "alice"))
            await get_stream_open(live, _session_of(world, "bob"))
            # Added in another process: the serving gateway connects, reads and serves it, and tells alice.
            added = cli(subprocess_env, "upstream", "add", "tracker", "--url", http_upstream, "--database", world.database_url)
            assert added.returncode == 0, added.stderr
            await wait_for(lambda: alice_heard, timeout=30)
            assert {"tracker.echo", "tracker.greeting"} <= await tool_names(alice, "tracker.")
            assert text_of(await alice.call_tool("tracker.echo", {"text": "live"})) == "echo: live"
            assert await tool_names(bob, "tracker.") == set()  # no grant: bob's view did not change
            # Its health, as the serving gateway reported it, seen by the CLI in another process.
            await wait_for(lambda: state_of(world, "tracker") == "connected")
            health = listed(world, subprocess_env)["tracker"]
            assert (health["state"], health["tools_listed"], health["tools_withheld"], health["pinned_tools"]) == ("connected", N, 0, N)
            assert health["last_error"] is None and health["last_seen"] and health["reported_by"]
            # Removed in another process: its tools leave, alice is told, calls stop being forwarded.
            connection = gateway.upstreams.connections["tracker"]
            removed = cli(subprocess_env, "upstream", "remove", "tracker", "--database", world.database_url)
            assert removed.returncode == 0, removed.stderr
            await wait_for(lambda: len(alice_heard) == 2, timeout=30)
            assert await tool_names(alice, "tracker.") == set()
            refused = await alice.call_tool("tracker.echo", {"text": "gone"})
            assert refused.is_error and text_of(refused).startswith("No tool named tracker.echo is available to you")
            # The connection is closed and the pool no longer holds it.
            await wait_for(lambda: connection.client is None)
            assert "tracker" not in gateway.upstreams.connections
            assert not (await alice.call_tool("files.list", {"path": "reports"})).is_error
    assert alice_heard == [LIST_CHANGED, LIST_CHANGED]
    assert bob_heard == []
    # Removing took its health row with it.
    assert "tracker" not in listed(world, subprocess_env)


async def test_upstream_list_shows_down_connected_and_stopped(sqlite_world, subprocess_env):
    world = sqlite_world
    down_url = f"http://127.0.0.1:{_closed_port()}/mcp"
    for args in (("down", "--url", down_url, "--timeout", "2", "--no-connect"), ("local", "--command", f"{sys.executable} {SERVER_SCRIPT}")):
        done = cli(subprocess_env, "upstream", "add", *args, "--database", world.database_url)
        assert done.returncode == 0, done.stderr
    # Before any gateway ran: said plainly.
    before = listed(world, subprocess_env)
    assert {name: u["state"] for name, u in before.items()} == {"down": "no gateway has reported", "local": "no gateway has reported"}
    assert (before["down"]["pinned_tools"], before["local"]["pinned_tools"]) == (0, N)
    table = cli(subprocess_env, "upstream", "list", "--database", world.database_url)
    assert "no gateway has reported" in table.stdout and f"{N} pinned" in table.stdout
    with serve(world):
        await wait_for(lambda: state_of(world, "down") == "down" and state_of(world, "local") == "connected", timeout=30)
        now = listed(world, subprocess_env)
        assert now["down"]["state"] == "down" and "ConnectError" in now["down"]["last_error"]
        assert now["down"]["last_seen"] is None
        assert (now["local"]["tools_listed"], now["local"]["tools_withheld"]) == (N, 0)
        shown = cli(subprocess_env, "upstream", "show", "down", "--database", world.database_url)
        assert shown.returncode == 0 and json.loads(shown.stdout)["state"] == "down"
        table = cli(subprocess_env, "upstream", "list", "--database", world.database_url)
        assert "connected" in table.stdout and f"{N} listed, 0 withheld" in table.stdout and "ConnectError" in table.stdout
    # The gateway stopped: its reports say so rather than a state nobody keeps up to date.
    after = listed(world, subprocess_env)
    assert (after["down"]["state"], after["local"]["state"]) == ("stopped", "stopped")


async def test_a_withheld_tool_is_counted_in_the_health_report(sqlite_world, subprocess_env, live_upstream):
    """Pinned at add; the upstream then offers a new tool: the serving gateway withholds it and counts it."""
    world = sqlite_world
    server, url = live_upstream
    done = cli(subprocess_env, "upstream", "add", "tracker", "--url", url, "--database", world.database_url)
    assert done.returncode == 0, done.stderr
    add_tool(server, "leak")
    with serve(world):
        await wait_for(lambda: state_of(world, "tracker") == "connected", timeout=30)
        health = listed(world, subprocess_env)["tracker"]
        assert (health["tools_listed"], health["tools_withheld"], health["pinned_tools"]) == (N, 1, N)


def _children_running(script) -> int:
    """How many child processes of this test process run `script` (the gateway serves in a thread of it)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and str(script).encode() in cmdline:
            count += 1
    return count


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
async def test_removing_a_stdio_upstream_while_serving_stops_its_process(sqlite_world, subprocess_env):
    world = sqlite_world
    done = cli(subprocess_env, "upstream", "add", "local", "--command", f"{sys.executable} {SERVER_SCRIPT}", "--database", world.database_url)
    assert done.returncode == 0, done.stderr
    PolicyAdmin(world.engine).add_grant("role:intern", "tool:local.*")
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("bob")) as bob:
            assert "local.greeting" in await tool_names(bob, "local.")
            assert _children_running(SERVER_SCRIPT) == 1
            removed = cli(subprocess_env, "upstream", "remove", "local", "--database", world.database_url)
            assert removed.returncode == 0, removed.stderr
            await wait_for(lambda: _children_running(SERVER_SCRIPT) == 0, timeout=30)
            assert await tool_names(bob, "local.") == set()
            refused = await bob.call_tool("local.greeting", {})
            assert refused.is_error and text_of(refused).startswith("No tool named local.greeting is available to you")


async def test_an_upstream_added_while_serving_brings_its_resources_and_prompts_and_takes_them_when_removed(
    sqlite_world, subprocess_env, http_upstream,
):
    world = sqlite_world
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:analyst", "resource:upstream://tracker/note://*")
    admin.add_grant("role:analyst", "prompt:tracker.plan")
    heard: list[str] = []
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard)) as alice:
            assert [p.name for p in (await alice.list_prompts()).prompts if p.name.startswith("tracker.")] == []
            await get_stream_open(live, _session_of(world, "alice"))
            added = cli(subprocess_env, "upstream", "add", "tracker", "--url", http_upstream, "--database", world.database_url)
            assert added.returncode == 0, added.stderr
            # alice can see no tool of it: she is told of the resources and the prompt that joined.
            await wait_for(lambda: len(heard) >= 2, timeout=60)
            assert sorted(heard) == ["notifications/prompts/list_changed", "notifications/resources/list_changed"]
            assert (await alice.read_resource("upstream://tracker/note://alpha")).contents[0].text == "alpha text"
            assert (await alice.read_resource("upstream://tracker/note://x1")).contents[0].text == "note x1"
            assert (await alice.get_prompt("tracker.plan")).messages[0].content.text == "Plan the day."
            removed = cli(subprocess_env, "upstream", "remove", "tracker", "--database", world.database_url)
            assert removed.returncode == 0, removed.stderr
            await wait_for(lambda: len(heard) >= 4, timeout=60)
            assert sorted(heard[2:]) == ["notifications/prompts/list_changed", "notifications/resources/list_changed"]
            for request, refusal in (
                (alice.read_resource("upstream://tracker/note://alpha"), "Unknown resource: upstream://tracker/note://alpha"),
                (alice.get_prompt("tracker.plan"), "Unknown prompt: tracker.plan"),
            ):
                with pytest.raises(MCPError) as caught:
                    await request
                assert caught.value.error.message == refusal
