"""2026-07-28 listen streams hear only about their own caller's lists."""

from __future__ import annotations

import anyio
from mcp.server.subscriptions import ResourcesListChanged, ToolsListChanged

from .harness import cli, connect, serve


async def test_listen_stream_hears_only_its_own_callers_changes(sqlite_world, subprocess_env):
    world = sqlite_world
    with serve(world) as live:
        async with (
            connect(live.mcp_url, world.token("alice"), mode="auto") as alice,
            connect(live.mcp_url, world.token("bob"), mode="auto") as bob,
            alice.listen(tools_list_changed=True, resources_list_changed=True, prompts_list_changed=True) as alice_sub,
            bob.listen(tools_list_changed=True, resources_list_changed=True, prompts_list_changed=True) as bob_sub,
        ):
            assert alice.protocol_version == "2026-07-28"
            assert cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url).returncode == 0
            with anyio.fail_after(10):
                alice_event = await anext(aiter(alice_sub))
            assert cli(subprocess_env, "grant", "role:intern", "resource:file:///reports/*", "--database", world.database_url).returncode == 0
            with anyio.fail_after(10):
                bob_event = await anext(aiter(bob_sub))
    assert isinstance(alice_event, ToolsListChanged)
    assert isinstance(bob_event, ResourcesListChanged)


async def test_listen_stream_hears_a_commit_without_waiting_for_a_poll(world, subprocess_env):
    gateway = world.gateway()
    # No poll in the life of this test: only the commit itself can wake the notifier.
    gateway.notifier.interval = 3600
    with serve(world, gateway) as live:
        async with (
            connect(live.mcp_url, world.token("alice"), mode="auto") as alice,
            alice.listen(tools_list_changed=True) as alice_sub,
        ):
            revoked = cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url)
            assert revoked.returncode == 0, revoked.stderr
            with anyio.fail_after(30):
                event = await anext(aiter(alice_sub))
    assert isinstance(event, ToolsListChanged)
