"""A benchmark's server in a child process: start it, wait until it listens, stop it.

The child writes its port to a ready file once its socket is bound; the
parent waits for that file, then for the port to accept, so the first
timed request never meets a server still starting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def child_server(argv: list[str], workdir: Path, name: str) -> AsyncIterator[str]:
    """Run `python argv… --ready-file F` and yield its /mcp URL; the child is ended on exit."""
    ready = workdir / f"{name}.port"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, *argv, "--ready-file", str(ready)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} server did not start")
            await asyncio.sleep(0.05)
        port = int(ready.read_text())
        await _wait_until_up(port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _wait_until_up(port: int) -> None:
    for _ in range(600):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)


def server_parser(doc: str, roles: tuple[str, ...], loop: str, http: str) -> argparse.ArgumentParser:
    """The options of a benchmark that starts its servers as children of itself (`--serve ROLE`, hidden).

    `loop` and `http` are `mcp-acl serve`'s defaults, passed in so this module stays free of mcp_acl.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default=loop, help="the servers' event loop (default: as `mcp-acl serve`)")
    parser.add_argument("--http", choices=["httptools", "h11"], default=http, help="the servers' HTTP parser (default: as `mcp-acl serve`)")
    parser.add_argument("--serve", choices=list(roles), help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--tools", help=argparse.SUPPRESS)
    return parser
