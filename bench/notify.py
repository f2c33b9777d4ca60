"""Benchmark: from a policy commit to the list_changed notice, on both protocol eras.

One database (a new SQLite file in WAL mode, or `--database`), two mcp-acl
servers on it, each in its own process under uvicorn on 127.0.0.1:

- "signalled": as shipped; the notifier looks as soon as a commit is
  signalled (store/commits.py) and polls every 0.25 s besides;
- "poll only": the same, with the commit signal switched off, as before.

Each server has two clients for the same user, in this process: a
2025-11-25 session listening on its GET stream, and a 2026-07-28 client
with a `subscriptions/listen` stream. This process commits a change to
that user's tools (as the CLI would, from another process) at uneven
intervals, and times each commit's return to each notice's arrival.

    python bench/notify.py            # 40 commits
    python bench/notify.py --quick    # 8 (CI smoke run)
    python bench/notify.py --database postgresql+psycopg://…/empty_db   # on PostgreSQL

The last line is `ratio N`: the listen streams' median over the GET
streams' median, signalled server, same commits.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _child_server import child_server  # noqa: E402 (bench/, the script's folder)

USER = "ada"
TOOL = "tool:bench.extra"
TOOLS_MODULE = '''
from mcp_acl.gateway.specs import ToolSpec

SCHEMA = {"type": "object", "properties": {}}

async def nothing(args, ctx):
    return "ok"

def load(config):
    return [ToolSpec(name=n, description="Does nothing.", input_schema=SCHEMA, handler=nothing)
            for n in ("bench.base", "bench.extra")]
'''


# -- the servers (each run in a child process) -------------------------------


def _serve(database_url: str, tools_dir: str, ready_file: str, poll_only: bool) -> None:
    import uvicorn

    from mcp_acl.app import create_app
    from mcp_acl.config import Settings
    from mcp_acl.gateway import runtime
    from mcp_acl.gateway.runtime import build_gateway
    from mcp_acl.gateway.specs import ToolConfig
    from mcp_acl.gateway.toolload import load_tool_modules
    from mcp_acl.store import make_engine

    if poll_only:
        async def no_signal(engine, on_commit, *, task_status, on_listening=None):
            task_status.started()

        runtime.watch_commits = no_signal
    engine = make_engine(database_url)
    settings = Settings(database_url=database_url)
    catalogue = load_tool_modules([Path(tools_dir)], ToolConfig(files_root=Path(tools_dir), sql_url="sqlite://"))
    app = create_app(settings, engine, gateway=build_gateway(settings, engine, catalogue))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    Path(ready_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on")).run(sockets=[sock])


def _server(workdir: Path, database_url: str, name: str, poll_only: bool):
    # This script again, in a child process, serving the gateway on the shared database.
    args = [__file__, "--serve", database_url, "--tools", str(workdir / "tools")]
    return child_server([*args, "--poll-only"] if poll_only else args, workdir, name)


# -- this process: the clients and the commits --------------------------------


def _prepare(workdir: Path, url: str | None) -> tuple[str, str]:
    from mcp_acl.auth.keys import SigningKeys
    from mcp_acl.auth.tokens import mint_access_token
    from mcp_acl.config import Settings
    from mcp_acl.store import PolicyAdmin, make_engine, upgrade

    (workdir / "tools").mkdir()
    (workdir / "tools" / "bench_tools.py").write_text(TOOLS_MODULE)
    url = url or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    admin = PolicyAdmin(engine, actor="bench")
    admin.add_client("bench-cli")
    admin.add_user(USER)
    admin.add_grant(f"user:{USER}", "tool:bench.base")
    settings = Settings(database_url=url)
    keys = SigningKeys(engine)
    keys.ensure_active()
    token = mint_access_token(
        keys, issuer=settings.embedded_issuer_url, audience=settings.resource_url,
        subject=USER, client_id="bench-cli", scopes=["mcp"], ttl=timedelta(hours=1),
    )
    engine.dispose()
    return url, token


class Ears:
    """When each client of one server last heard tools/list_changed."""

    def __init__(self) -> None:
        self.heard: dict[str, list[float]] = {"GET stream": [], "listen": []}

    async def on_message(self, message) -> None:
        import mcp_types as types

        if isinstance(message, types.ToolListChangedNotification):
            self.heard["GET stream"].append(time.perf_counter())

    async def listen(self, client, ready: asyncio.Event) -> None:
        async with client.listen(tools_list_changed=True) as subscription:
            ready.set()
            async for _event in subscription:
                self.heard["listen"].append(time.perf_counter())


async def _clients(stack: AsyncExitStack, url: str, token: str, ears: Ears, tasks: list[asyncio.Task]) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def client(mode: str, **options):
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=None))
        )
        return await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), mode=mode, **options))

    legacy = await client("legacy", message_handler=ears.on_message)
    await legacy.list_tools()
    modern = await client("auto")
    ready = asyncio.Event()
    tasks.append(asyncio.create_task(ears.listen(modern, ready)))
    await ready.wait()


def _commit(admin, grant_id: int | None) -> tuple[int | None, float]:
    # Grant the extra tool, or revoke it again: either way the user's tools change.
    if grant_id is None:
        grant_id = admin.add_grant(f"user:{USER}", TOOL)
    else:
        admin.revoke(grant_id)
        grant_id = None
    return grant_id, time.perf_counter()


async def _wait_for_all(servers: dict[str, Ears], counts: dict[tuple[str, str], int]) -> None:
    deadline = time.monotonic() + 30
    while any(len(ears.heard[era]) <= counts[(name, era)] for name, ears in servers.items() for era in ears.heard):
        if time.monotonic() > deadline:
            raise RuntimeError("a notice did not arrive within 30 s")
        await asyncio.sleep(0.001)


async def _bench(quick: bool, database: str | None) -> None:
    from mcp_acl.store import PolicyAdmin, make_engine

    commits = 8 if quick else 40
    latencies: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-notify-") as tmp:
        workdir = Path(tmp)
        url, token = _prepare(workdir, database)
        servers = {"signalled": Ears(), "poll only": Ears()}
        tasks: list[asyncio.Task] = []
        async with AsyncExitStack() as stack:
            for name, ears in servers.items():
                server_url = await stack.enter_async_context(_server(workdir, url, name.replace(" ", "-"), name == "poll only"))
                await _clients(stack, server_url, token, ears, tasks)
            engine = make_engine(url)
            admin = PolicyAdmin(engine, actor="bench")
            grant_id = None
            for i in range(commits):
                # Uneven gaps, so commits land at every phase of the 0.25 s poll.
                await asyncio.sleep(0.3 + (i * 0.137) % 0.25)
                counts = {(name, era): len(ears.heard[era]) for name, ears in servers.items() for era in ears.heard}
                grant_id, committed = await asyncio.to_thread(_commit, admin, grant_id)
                await _wait_for_all(servers, counts)
                for name, ears in servers.items():
                    for era, times in ears.heard.items():
                        latencies.setdefault((name, era), []).append((times[counts[(name, era)]] - committed) * 1000)
            engine.dispose()
            # End the listen streams before their clients close.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    backend = "PostgreSQL" if database and database.startswith("postgresql") else "SQLite"
    print(f"commit → tools/list_changed, {commits} commits from another process, {backend}, both servers on one database")
    print(f"{'server':<10} {'stream':<11} {'median ms':>9} {'min ms':>7} {'max ms':>7}")
    for (name, era), times in latencies.items():
        print(f"{name:<10} {era:<11} {statistics.median(times):>9.1f} {min(times):>7.1f} {max(times):>7.1f}")
    ratio = statistics.median(latencies[("signalled", "listen")]) / statistics.median(latencies[("signalled", "GET stream")])
    print(f"ratio {ratio:.2f}")


def main() -> None:
    """Run the benchmark, or (internally) one of its servers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--database", help="an empty database to run on (default: a new SQLite file)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--tools", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument("--poll-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.tools, args.ready_file, args.poll_only)
    else:
        asyncio.run(_bench(args.quick, args.database))


if __name__ == "__main__":
    main()
