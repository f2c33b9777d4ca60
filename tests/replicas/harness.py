"""Several real `mcp-acl serve` processes on one PostgreSQL database, for the replica tests.

Each replica is `python -m mcp_acl serve --port 0` in its own process, on
the same database URL and the same MCP_ACL_HOME (the built-in tools' workspace), as
operators run them behind a load balancer; tests talk to each one by its
own URL, with the SDK's real client and tokens from the embedded issuer
(its keys are in the shared database, so a token works on every replica).
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2
import mcp_types as types
from sqlalchemy import Engine, text

LIST_CHANGED = (
    types.ToolListChangedNotification,
    types.ResourceListChangedNotification,
    types.PromptListChangedNotification,
)


@dataclass
class Replica:
    """One `mcp-acl serve` process."""

    proc: subprocess.Popen
    url: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The process id (its LISTEN connection is named after it: store/commits.py)."""
        return self.proc.pid

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return self.url.removesuffix("/mcp")


def _start(env: dict[str, str], database_url: str) -> Replica:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--database", database_url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    return Replica(proc)


def _wait_serving(replica: Replica, timeout: float = 60) -> None:
    # Raw reads of the child's output until the banner shows (no buffer can hide it).
    selector = selectors.DefaultSelector()
    selector.register(replica.proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while not (found := re.search(r"mcp-acl serving (http://\S+/mcp)", "".join(replica.output))):
            if replica.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"a replica did not start: {''.join(replica.output)!r}")
            if selector.select(timeout=0.5):
                replica.output.append(os.read(replica.proc.stdout.fileno(), 65536).decode())
    finally:
        selector.close()
    replica.url = found.group(1)
    # uvicorn answers only once the lifespan (notifier, LISTEN, reaper) has started.
    while httpx2.get(replica.base + "/healthz", timeout=30).status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("a replica never became healthy")
        time.sleep(0.1)


@contextmanager
def replicas(env: dict[str, str], database_url: str, count: int) -> Iterator[list[Replica]]:
    """`count` replicas on `database_url`, started side by side, stopped (by their handles) at the end."""
    started = [_start(env, database_url) for _ in range(count)]
    try:
        for replica in started:
            _wait_serving(replica)
        yield started
    finally:
        for replica in started:
            replica.proc.terminate()
        for replica in started:
            try:
                replica.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.communicate()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`python -m mcp_acl ARGS` in another process: an administrator on any machine."""
    done = subprocess.run([sys.executable, "-m", "mcp_acl", *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def listen_backends(engine: Engine) -> dict[int, int]:
    """For each gateway process listening for commits on this database: process id -> its backend's pid."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT application_name, pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'mcp-acl listen %' AND query LIKE 'LISTEN %'"
        )).all()
    return {int(name.rsplit(" ", 1)[1]): pid for name, pid in rows}


def recorder(heard: list[str]):
    """A client message handler that notes each list_changed notification's method."""
    async def handle(message) -> None:
        if isinstance(message, LIST_CHANGED):
            heard.append(message.method)

    return handle
