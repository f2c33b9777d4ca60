"""Commit signals: a policy change made through another engine is heard without polling."""

from __future__ import annotations

from functools import partial

import anyio

from mcp_acl.store import PolicyAdmin, make_engine, upgrade
from mcp_acl.store.commits import watch_commits


async def _hear_a_change(watched, admin: PolicyAdmin) -> None:
    """Watch `watched` while `admin` keeps changing the policy; return once a change is heard."""
    heard = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(partial(watch_commits, watched, heard.set))
        # The watch may be set up just after `started`: change until one change is heard.
        tg.start_soon(_keep_changing, admin, heard)
        with anyio.fail_after(30):
            await heard.wait()
        tg.cancel_scope.cancel()


async def test_a_policy_change_committed_elsewhere_is_signalled(engine):
    # A second engine stands for another process (the CLI) writing the same database.
    other = make_engine(engine.url.render_as_string(hide_password=False))
    admin = PolicyAdmin(other)
    admin.add_role("auditor")
    try:
        await _hear_a_change(engine, admin)
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


async def test_a_database_opened_as_serve_opens_it_is_watched_too(tmp_path):
    # `mcp-acl serve` opens an existing SQLite file as a `file:` URI (mode=rw, so
    # nothing is created); its folder must still be watched, not a folder named
    # after the URI. A folder name that needs quoting in a URI is part of the test.
    url = f"sqlite:///{tmp_path / 'a folder' / 'mcp-acl.db'}"
    writer = make_engine(url)
    upgrade(writer)
    served = make_engine(url, create=False)
    assert served.url.query.get("uri")
    admin = PolicyAdmin(writer)
    admin.add_role("auditor")
    try:
        await _hear_a_change(served, admin)
    finally:
        writer.dispose()
        served.dispose()
