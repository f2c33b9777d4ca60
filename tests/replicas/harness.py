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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
    """One `mcp-acl serve` process, its output going to a file (a pipe nobody reads would fill and stall it)."""

    proc: subprocess.Popen
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        """The process id (its LISTEN connection is named after it: store/commits.py)."""
        return self.proc.pid

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return self.url.removesuffix("/mcp")

    def output(self) -> str:
        """What the process printed so far."""
        return self.log.read_text(errors="replace")


def _start(env: dict[str, str], database_url: str, log: Path) -> Replica:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--database", database_url],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    return Replica(proc, log)


def _wait_serving(replica: Replica, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (found := re.search(r"mcp-acl serving (http://\S+/mcp)", replica.output())):
        if replica.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"a replica did not start: {replica.output()!r}")
        time.sleep(0.05)
    replica.url = found.group(1)
    # uvicorn answers only once the lifespan (notifier, LISTEN, reaper) has started.
    while httpx2.get(replica.base + "/healthz", timeout=30).status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("a replica never became healthy")
        time.sleep(0.1)


@contextmanager
def replicas(env: dict[str, str], database_url: str, count: int, logs: Path) -> Iterator[list[Replica]]:
    """`count` replicas on `database_url`, started side by side (output in `logs`), stopped by their handles at the end."""
    logs.mkdir(parents=True, exist_ok=True)
    started = [_start(env, database_url, logs / f"replica-{n}.log") for n in range(count)]
    try:
        for replica in started:
            _wait_serving(replica)
        yield started
    finally:
        for replica in started:
            replica.proc.terminate()
        for replica in started:
            try:
                replica.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.proc.kill()
                replica.proc.wait()


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


class OwnCluster:
    """A throwaway PostgreSQL cluster of one test's own (.ci/pg-cluster), to stop and start at will.

    The shared cluster of the other tests is never restarted.
    """

    def __init__(self, script: str, port: int) -> None:
        self.script = script
        self.port = port
        # Under /tmp, readable by the `postgres` user the cluster runs as (as in .ci/run).
        self.dir = tempfile.mkdtemp(prefix="mcp-acl-replicas-pg.")
        os.chmod(self.dir, 0o755)

    def _run(self, *args: str) -> str:
        done = subprocess.run([self.script, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"pg-cluster {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> str:
        """Make and start the cluster; its admin URL."""
        return self._run("start", self.dir, str(self.port))

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut)."""
        self._run("stop", self.dir)

    def resume(self) -> None:
        """Start the stopped server again, with its data."""
        self._run("resume", self.dir, str(self.port))

    def remove(self) -> None:
        """Stop it and delete its files."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def free_port(start: int = 55500) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, from `start` up."""
    for port in range(start, start + 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a PostgreSQL cluster")
