"""Commit signals: hear soon after any process commits to the database, instead of waiting for a poll.

- SQLite: a commit writes the database's WAL (or, without WAL, the file
  itself), so the database's folder is watched for changes to those files
  (inotify on Linux, through watchfiles). Every commit counts, the
  gateway's own audit rows included: a signal means "look now", not "the
  policy changed".
- PostgreSQL: each change to the policy sends `NOTIFY mcp_acl_policy` in its
  own transaction (`notify_policy_changed`, called by `bump_revision`); the
  server delivers it when that transaction commits, to a connection that
  LISTENs.
- Anything else (an in-memory SQLite database): no signal.

A lost signal costs only time: the notifier still polls as well.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
from anyio.abc import TaskStatus
from sqlalchemy import URL, Connection, Engine, text

log = logging.getLogger(__name__)

CHANNEL = "mcp_acl_policy"
# watchfiles: look for changes every STEP_MS, and report a burst of them
# (a busy gateway writes audit rows all the time) at least every BURST_MS.
STEP_MS = 20
BURST_MS = 100
# The watch runs in a worker thread that a cancel cannot interrupt: anyio
# waits for the thread to return, and watchfiles' own default lets it wait
# 5 s for a change. Returning every STOP_MS bounds how long stopping the
# server (or a test's server) waits for the watcher.
STOP_MS = 200
RETRY_SECONDS = (1, 2, 5, 10, 30)
# TCP keepalives on the LISTEN connection: a server that vanished without
# closing it (a network cut, a host gone) is noticed within about
# idle + interval * count seconds, and the listener reconnects. A server
# that ends it (a restart, pg_terminate_backend) is noticed at once.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def notify_policy_changed(conn: Connection) -> None:
    """Inside a policy change's transaction: signal it to listeners when it commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


async def watch_commits(
    engine: Engine, on_commit: Callable[[], None], *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    on_listening: Callable[[bool], None] = lambda listening: None,
) -> None:
    """Call `on_commit` (on the event loop) soon after each commit to `engine`'s database, until cancelled.

    `on_listening(True/False)` hears when the watch starts and stops hearing commits (for /readyz);
    it is never called where there is nothing to watch (an in-memory database).
    """
    backend = engine.url.get_backend_name()
    database = _sqlite_file(engine.url) if backend == "sqlite" else None
    if database is not None:
        await _watch_sqlite_files(database, on_commit, task_status, on_listening)
    elif backend == "postgresql":
        await _listen_postgres(engine, on_commit, task_status, on_listening)
    else:
        task_status.started()


def _sqlite_file(url: URL) -> Path | None:
    """The file of an SQLite URL, plain or a `file:` URI filename (as `serve` opens it); None in memory."""
    name = url.database
    if not name or name == ":memory:" or url.query.get("mode") == "memory":
        return None
    if url.query.get("uri"):
        # make_engine(create=False) opens "file:/path/with%20quoting?mode=rw": the path is the URI's.
        parts = urlsplit(name)
        if parts.scheme != "file" or not parts.path:
            return None
        name = unquote(parts.path)
    return Path(name).expanduser().resolve()


async def _watch_sqlite_files(
    database: Path, on_commit: Callable[[], None], task_status: TaskStatus[None], on_listening: Callable[[bool], None],
) -> None:
    from watchfiles import awatch

    names = {database.name, f"{database.name}-wal", f"{database.name}-journal"}
    on_listening(True)
    task_status.started()
    try:
        async for _changes in awatch(
            database.parent, watch_filter=lambda change, path: Path(path).name in names,
            step=STEP_MS, debounce=BURST_MS, rust_timeout=STOP_MS, recursive=False,
        ):
            on_commit()
    except (OSError, RuntimeError) as exc:
        # E.g. the system's limit of inotify watches is reached, or watchfiles'
        # own internal error (a RuntimeError): serving goes on, found by the poll.
        log.warning("not watching %s for commits (%s); changes are found by polling", database.parent, exc)
        on_listening(False)


async def _listen_postgres(
    engine: Engine, on_commit: Callable[[], None], task_status: TaskStatus[None], on_listening: Callable[[bool], None],
) -> None:
    import psycopg

    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    started = False
    failures = 0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                # Named for pg_stat_activity: which process listens (docs/deploy.md).
                conninfo, autocommit=True, application_name=f"mcp-acl listen {os.getpid()}", **KEEPALIVES,
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                on_listening(True)
                failures = 0
                if started:
                    # A commit made while reconnecting was not heard: look once now.
                    on_commit()
                else:
                    task_status.started()
                    started = True
                async for _notice in conn.notifies():
                    on_commit()
        except (psycopg.Error, OSError) as exc:
            log.warning("not listening for policy changes (%s); retrying", exc.__class__.__name__)
        on_listening(False)
        if not started:
            task_status.started()
            started = True
        await anyio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
        failures += 1
