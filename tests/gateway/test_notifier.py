"""Continuous evaluation over real HTTP: revocations from another process, list_changed to the affected only."""

from __future__ import annotations

import mcp_types as types

from mcp_acl.gateway.sessions import SessionStore

from .harness import cli, connect, get_stream_open, serve, text_of, wait_for

LIST_CHANGED = (
    types.ToolListChangedNotification,
    types.ResourceListChangedNotification,
    types.PromptListChangedNotification,
)


def _recorder(heard: list[str]):
    async def handle(message) -> None:
        if isinstance(message, LIST_CHANGED):
            heard.append(message.method)

    return handle


def _session_of(world, subject: str) -> str:
    return next(r.id for r in SessionStore(world.engine).live() if r.subject == subject)


async def test_revocation_in_another_process_stops_the_next_call(world, subprocess_env):
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            before = await alice.call_tool("sql.select", {"table": "orders"})
            revoked = cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url)
            assert revoked.returncode == 0, revoked.stderr
            after = await alice.call_tool("sql.select", {"table": "orders"})
    assert not before.is_error and "acme" in text_of(before)
    # Revoked, the tool is now hidden from alice: the same answer as a tool that never existed.
    assert after.is_error and text_of(after).startswith("No tool named sql.select is available to you. Your tools: ")
    assert [r.decision for r in world.audit_rows(kind="decision", target="tool:sql.select")] == ["allow", "deny"]


async def test_list_changed_reaches_only_the_affected_session(world, subprocess_env):
    alice_heard: list[str] = []
    bob_heard: list[str] = []
    with serve(world) as live:
        async with (
            connect(live.mcp_url, world.token("alice"), message_handler=_recorder(alice_heard)) as alice,
            connect(live.mcp_url, world.token("bob"), message_handler=_recorder(bob_heard)) as bob,
        ):
            await alice.list_tools()
            await bob.list_tools()
            await get_stream_open(live, _session_of(world, "alice"))
            await get_stream_open(live, _session_of(world, "bob"))
            # A change for analysts only: alice's tools change, bob's nothing.
            assert cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url).returncode == 0
            await wait_for(lambda: alice_heard)
            # Then a change for interns' resources only: bob's first notification
            # must be about resources, proving the first change sent him nothing.
            granted = cli(subprocess_env, "grant", "role:intern", "resource:file:///reports/*", "--database", world.database_url)
            assert granted.returncode == 0, granted.stderr
            await wait_for(lambda: bob_heard)
            tools_now = sorted(t.name for t in (await alice.list_tools()).tools)
    assert alice_heard == ["notifications/tools/list_changed"]
    assert bob_heard == ["notifications/resources/list_changed"]
    assert "sql.select" not in tools_now


async def test_get_stream_hears_a_commit_without_waiting_for_a_poll(world, subprocess_env):
    gateway = world.gateway()
    # No poll in the life of this test: only the commit itself can wake the notifier.
    gateway.notifier.interval = 3600
    heard: list[str] = []
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard)) as alice:
            await alice.list_tools()
            await get_stream_open(live, _session_of(world, "alice"))
            assert cli(subprocess_env, "revoke", str(world.grants["alice-select"]), "--database", world.database_url).returncode == 0
            await wait_for(lambda: heard, timeout=30)
    assert heard == ["notifications/tools/list_changed"]


async def test_change_that_touches_nobody_sends_nothing(sqlite_world, subprocess_env):
    world = sqlite_world
    heard: list[str] = []
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("bob"), message_handler=_recorder(heard)) as bob:
            await bob.list_tools()
            await get_stream_open(live, _session_of(world, "bob"))
            # A new user's grant moves the revision but changes nothing bob sees...
            assert cli(subprocess_env, "user", "add", "dave", "--database", world.database_url).returncode == 0
            assert cli(subprocess_env, "grant", "user:dave", "tool:files.*", "--database", world.database_url).returncode == 0
            # ...while this one does; it must be the only thing bob hears.
            assert cli(subprocess_env, "grant", "role:intern", "prompt:*", "--database", world.database_url).returncode == 0
            assert cli(subprocess_env, "grant", "role:intern", "tool:sql.tables", "--database", world.database_url).returncode == 0
            await wait_for(lambda: heard)
    assert heard == ["notifications/tools/list_changed"]


async def test_expiring_grant_notifies_without_a_new_revision(sqlite_world):
    from datetime import timedelta

    from mcp_acl.gateway.invocation import utcnow
    from mcp_acl.gateway.notifier import Notifier
    from mcp_acl.gateway.views import CatalogueViews
    from mcp_acl.policy import Identity
    from mcp_acl.store import PolicyAdmin, PolicyLoader

    start = utcnow()
    PolicyAdmin(sqlite_world.engine).add_grant("user:bob", "tool:sql.tables", expires_at=start + timedelta(minutes=5))
    clock = [start]
    notifier = Notifier(PolicyLoader(sqlite_world.engine), CatalogueViews(sqlite_world.gateway().catalogue), clock=lambda: clock[0])
    heard: list[str] = []

    async def record(kind: str) -> None:
        heard.append(kind)

    await notifier.check()
    notifier.watch("bob-session", Identity("bob", client_id="mcp-acl-cli"), record)
    clock[0] = start + timedelta(minutes=1)
    await notifier.check()
    assert heard == []
    clock[0] = start + timedelta(minutes=5, seconds=1)
    await notifier.check()
    assert heard == ["tools"]


async def test_a_change_between_watching_and_the_next_poll_is_not_missed(sqlite_world):
    from mcp_acl.gateway.notifier import Notifier
    from mcp_acl.gateway.views import CatalogueViews
    from mcp_acl.policy import Identity
    from mcp_acl.store import PolicyAdmin, PolicyLoader

    notifier = Notifier(PolicyLoader(sqlite_world.engine), CatalogueViews(sqlite_world.gateway().catalogue))
    heard: list[str] = []

    async def record(kind: str) -> None:
        heard.append(kind)

    await notifier.check()
    notifier.watch("bob-session", Identity("bob", client_id="mcp-acl-cli"), record)
    PolicyAdmin(sqlite_world.engine).add_grant("role:intern", "tool:sql.tables")
    await notifier.check()
    await notifier.check()
    assert heard == ["tools"]


async def test_a_change_committed_during_a_check_is_timed_from_its_wake(world):
    # A check begun by the poll (no wake before it) reads the policy just as a change commits
    # and wakes the notifier: that check tells the watcher, and the time from that wake is
    # what `mcp_acl_list_changed_seconds` must count; the next check finds nothing new.
    import anyio
    import anyio.from_thread

    from mcp_acl.policy import Identity
    from mcp_acl.store import PolicyAdmin

    notifier = world.gateway().notifier
    timed: list[float] = []
    heard: list[str] = []
    notifier.on_notified = timed.append
    notifier.interval = 0.05

    class CommitsWhileRead:
        """The loader, except that once armed its next read first commits a grant and wakes the notifier."""

        def __init__(self, loader) -> None:
            self.loader, self.armed = loader, False

        def current(self):
            if self.armed:
                self.armed = False
                PolicyAdmin(world.engine, actor="test").add_grant("role:intern", "tool:files.read")
                anyio.from_thread.run_sync(notifier.wake)  # as the commit watcher does, on the loop
            return self.loader.current()

    source = notifier.policies = CommitsWhileRead(notifier.policies)

    async def notify(kind: str) -> None:
        heard.append(kind)

    notifier.watch("bob", Identity("bob", "mcp-acl-cli", frozenset({"intern"})), notify)
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        source.armed = True
        with anyio.fail_after(30):
            while not heard:
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # several polls more: none may add a notice or a timing
        tg.cancel_scope.cancel()
    assert heard == ["tools"]
    assert len(timed) == 1 and timed[0] >= 0
