"""Commit signals: a policy change made through another engine is heard without polling."""

from __future__ import annotations

from functools import partial

import anyio

from mcp_acl.store import PolicyAdmin, make_engine
from mcp_acl.store.commits import watch_commits


async def test_a_policy_change_committed_elsewhere_is_signalled(engine):
    heard = anyio.Event()
    # A second engine stands for another process (the CLI) writing the same database.
    other = make_engine(engine.url.render_as_string(hide_password=False))
    admin = PolicyAdmin(other)
    admin.add_role("auditor")
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(partial(watch_commits, engine, heard.set))
            # The watch may be set up just after `started`: change until one change is heard.
            tg.start_soon(_keep_changing, admin, heard)
            with anyio.fail_after(30):
                await heard.wait()
            tg.cancel_scope.cancel()
    finally:
        other.dispose()


async def _keep_changing(admin: PolicyAdmin, heard: anyio.Event) -> None:
    n = 0
    while not heard.is_set():
        await anyio.to_thread.run_sync(partial(admin.add_grant, "role:auditor", f"tool:t{n}"))
        n += 1
        await anyio.sleep(1)


async def test_an_in_memory_database_gives_no_signal_and_does_not_fail():
    memory = make_engine("sqlite://")
    async with anyio.create_task_group() as tg:
        await tg.start(partial(watch_commits, memory, lambda: None))
        tg.cancel_scope.cancel()


async def test_a_folder_that_cannot_be_watched_leaves_it_to_the_poll(tmp_path, caplog):
    folder = tmp_path / "gone"
    engine = make_engine(f"sqlite:///{folder / 'mcp-acl.db'}")
    folder.rmdir()
    # Returns (logging why) instead of failing the gateway's background tasks.
    await watch_commits(engine, lambda: None)
    assert "changes are found by polling" in caplog.text
