"""Racing a revocation against a token being issued (refresh or exchange), paused at one stage.

TokenIssuer.issue calls its `pause(stage)` hook at "signed", "recorded"
(rows inserted) and "checked" (revocation checked, not committed). These
helpers start the revocation from another connection at one of those
stages and hand back what the issue produced, so each race test states
only its flow and its invariant: refused, or whatever it issued revoked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from authlib.oauth2.rfc6749 import InvalidGrantError
from sqlalchemy import text

from mcp_acl.oauth.tokens import TokenIssuer


def revoke_in_thread(revoke: Callable[[], object]) -> threading.Thread:
    """Run `revoke` on another connection, in a thread (it may have to wait for the issuer's locks)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            revoke()
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def _joined(thread: threading.Thread) -> None:
    thread.join(timeout=30)
    assert not thread.is_alive() and thread.errors == []  # type: ignore[attr-defined]


def revoked_while_recorded(engine, issuer: TokenIssuer, issue: Callable[[], dict], revoke: Callable[[], object]) -> dict | None:
    """Revoke once the issuer has inserted its rows; what it issued, or None when it was refused.

    On PostgreSQL the issuer holds nothing the revocation needs yet, so the revocation
    commits first and the issue must be refused; on SQLite the issuer holds the write
    lock, so the revocation runs after its commit (the caller checks it swept the result).
    """
    threads: list[threading.Thread] = []

    def pause(stage: str) -> None:
        if stage == "recorded":
            threads.append(revoke_in_thread(revoke))
            if engine.dialect.name == "postgresql":
                _joined(threads[0])

    issuer.pause = pause
    try:
        outcome = issue()
    except InvalidGrantError:
        outcome = None
    _joined(threads[0])
    if engine.dialect.name == "postgresql":
        assert outcome is None
    return outcome


def revoked_after_the_check(engine, issuer: TokenIssuer, issue: Callable[[], dict], revoke: Callable[[], object]) -> dict:
    """Revoke after the issuer's check passed, before it commits: it issues, and the revocation waits for it."""
    threads: list[threading.Thread] = []

    def pause(stage: str) -> None:
        if stage != "checked":
            return
        threads.append(revoke_in_thread(revoke))
        if engine.dialect.name == "postgresql":
            wait_for_a_lock_wait(engine)  # the revocation is blocked on rows the issuer holds

    issuer.pause = pause
    outcome = issue()
    _joined(threads[0])
    return outcome


def wait_for_a_lock_wait(engine) -> None:
    """Until another session of this database waits on a row lock (fails after 30 s)."""
    deadline = time.monotonic() + 30
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    while True:
        with engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        assert time.monotonic() < deadline, "the revocation never waited on the issuer's locks"
        time.sleep(0.01)
