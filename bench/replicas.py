"""Benchmark: three `mcp-acl serve` replicas on one PostgreSQL database.

Each replica is `python -m mcp_acl serve --port 0` in its own process, as
operators run them behind a load balancer; this process holds the SDK's
clients (2025-11-25 sessions) on each replica and commits policy changes
as the CLI would, from outside every replica.

(a) revocation: a caller on every replica calls `files.list` in a loop
    while this process revokes the caller's grant (then grants it again,
    waits until every replica allows it, and repeats). Timed from the
    revoking commit's return to each replica's first refused call and to
    its `tools/list_changed`; every call that started after the commit
    returned and was allowed anyway is counted as a stale allow.
(b) throughput: the same number of clients calling as fast as they can,
    all on one replica, then spread over three; calls per second, per
    core, and the share of the CPU time the database's backends used.
(c) with `--grants N` (e.g. 100000, the world of bench/decide.py) the
    policy gets N more grants, 10 users per 100 grants and roles, before
    the replicas start; (a) then shows what one change costs at that size.

    python bench/replicas.py                      # 50 revocations, small policy
    python bench/replicas.py --grants 100000 --revocations 20
    python bench/replicas.py --quick              # a smoke run (CI)

PostgreSQL: `--database URL` (an empty database), else a new database on the
server of MCP_ACL_TEST_POSTGRES_URL, dropped at the end.

The last line is `ratio N`: one replica's median tools/call latency on
PostgreSQL over the same on SQLite (a fourth server on an SQLite file),
called in turn, call by call, by one client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _timing import mint_token, p99, sdk_client, time_pairs  # noqa: E402 (bench/, the script's folder)

TOOL = "files.list"
CALLER = "ada"  # her grant is revoked and granted again
WORKER = "lin"  # keeps hers: the throughput clients


# -- the databases ------------------------------------------------------------


@contextmanager
def postgres_database(given: str | None) -> Iterator[str]:
    """`given`, or a new database on MCP_ACL_TEST_POSTGRES_URL's server, dropped afterwards."""
    if given:
        yield given
        return
    from sqlalchemy import create_engine, make_url, text

    admin_url = os.environ.get("MCP_ACL_TEST_POSTGRES_URL")
    if not admin_url:
        sys.exit("bench/replicas.py needs PostgreSQL: --database URL or MCP_ACL_TEST_POSTGRES_URL")
    name = f"mcp_acl_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, extra_grants: int) -> tuple[dict[str, str], int]:
    """Users, roles, grants (and `extra_grants` more); tokens by user and the caller's grant id."""
    from mcp_acl.config import Settings
    from mcp_acl.store import PolicyAdmin, make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    admin = PolicyAdmin(engine, actor="bench")
    admin.add_client("bench-cli")
    admin.add_role("worker")
    admin.add_user(CALLER)
    admin.add_user(WORKER, ["worker"])
    admin.add_grant("role:worker", f"tool:{TOOL}")
    grant = admin.add_grant(f"user:{CALLER}", f"tool:{TOOL}")
    if extra_grants:
        add_world(admin, extra_grants)
    settings = Settings(database_url=url)
    tokens = {user: mint_token(engine, settings, user) for user in (CALLER, WORKER)}
    engine.dispose()
    return tokens, grant


def add_world(admin, grants: int) -> None:
    """bench/decide.py's RBAC world of `grants` grants, in one change (one revision) through PolicyAdmin."""
    from sqlalchemy import insert

    from decide import build_world
    from mcp_acl.store import tables as t
    from mcp_acl.store.admin import utcnow

    world = build_world(max(1, grants // 10), max(1, grants // 100), grants, 0)
    now = utcnow()
    roles = sorted({r for rs in world.members.values() for r in rs})
    with admin.change() as conn:
        conn.execute(insert(t.roles), [{"name": r, "created_at": now} for r in roles])
        conn.execute(insert(t.users), [{"name": u, "disabled": False, "created_at": now} for u in world.members])
        conn.execute(insert(t.role_members), [{"user_name": u, "role_name": r} for u, rs in world.members.items() for r in rs])
        conn.execute(insert(t.grants), [
            {"principal": g.principal, "effect": g.effect.value, "target": g.target, "condition": g.condition,
             "expires_at": g.expires_at, "created_by": "bench", "created_at": now}
            for g in world.grants
        ])


# -- the replicas ---------------------------------------------------------------


@dataclass
class Replica:
    """One `mcp-acl serve` process."""

    proc: subprocess.Popen
    log: Path
    url: str = ""

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.proc.pid)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone or not ours to read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@asynccontextmanager
async def serving(urls: list[str], home: Path, name: str) -> AsyncIterator[list[Replica]]:
    """A replica on each database URL, all started side by side; stopped at the end."""
    env = dict(os.environ, MCP_ACL_HOME=str(home))
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("MCP_ACL_DATABASE_URL", None)
    started = []
    for n, url in enumerate(urls):
        log = home.parent / f"{name}-{n}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--database", url],
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(Replica(proc, log))
    try:
        for replica in started:
            await _wait_serving(replica)
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


async def _wait_serving(replica: Replica) -> None:
    import httpx2

    deadline = time.monotonic() + 300  # a big policy takes seconds to load
    while not (found := re.search(r"mcp-acl serving (http://\S+/mcp)", replica.log.read_text(errors="replace"))):
        if replica.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"a replica did not start: {replica.log.read_text(errors='replace')}")
        await asyncio.sleep(0.05)
    replica.url = found.group(1)
    async with httpx2.AsyncClient(timeout=60) as http:
        while (await http.get(replica.url.removesuffix("/mcp") + "/readyz")).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("a replica never became ready")
            await asyncio.sleep(0.1)


# -- (a) revocation -------------------------------------------------------------


@dataclass
class Caller:
    """A client on one replica calling in a loop; what each call got, and when list_changed arrived."""

    client: object = None
    calls: list[tuple[float, float, bool]] = field(default_factory=list)  # (started, ended, allowed)
    heard: list[float] = field(default_factory=list)

    async def on_message(self, message) -> None:
        import mcp_types as types

        if isinstance(message, types.ToolListChangedNotification):
            self.heard.append(time.perf_counter())

    async def loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            result = await self.client.call_tool(TOOL, {})
            self.calls.append((started, time.perf_counter(), not result.is_error))

    def allowed_now(self) -> bool:
        return bool(self.calls) and self.calls[-1][2]

    def refused_now(self) -> bool:
        return bool(self.calls) and not self.calls[-1][2]


@dataclass
class RevokeFigures:
    refusal_ms: list[float] = field(default_factory=list)  # one per replica per revocation
    notice_ms: list[float] = field(default_factory=list)
    stale_allows: int = 0
    calls_after: int = 0


async def _until(condition, what: str, loops: list[asyncio.Task], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for loop in loops:
            if loop.done():
                loop.result()  # a caller's error ends the benchmark with it
                raise RuntimeError("a caller stopped")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")
        await asyncio.sleep(0.001)


async def revocations(stack: AsyncExitStack, replicas: list[Replica], url: str, token: str, grant: int, count: int) -> RevokeFigures:
    """Revoke and re-grant the caller's grant `count` times with a caller on every replica."""
    from mcp_acl.store import PolicyAdmin, make_engine

    callers = [Caller() for _ in replicas]
    for caller, replica in zip(callers, replicas):
        caller.client = await stack.enter_async_context(_client(replica.url, token, caller.on_message))
        await caller.client.list_tools()
    stop = asyncio.Event()
    loops = [asyncio.create_task(c.loop(stop)) for c in callers]
    engine = make_engine(url)
    admin = PolicyAdmin(engine, actor="bench")
    figures = RevokeFigures()
    try:
        await _until(lambda: all(c.allowed_now() for c in callers), "a first allowed call on every replica", loops)
        for i in range(count):
            # Uneven gaps, so commits land at every phase of the replicas' fallback poll.
            await asyncio.sleep(0.2 + (i * 0.137) % 0.25)
            seen = [(len(c.calls), len(c.heard)) for c in callers]
            await asyncio.to_thread(admin.revoke, grant)
            committed = time.perf_counter()
            await _until(lambda: all(c.refused_now() and len(c.heard) > h for c, (_, h) in zip(callers, seen)),
                         "a refusal and list_changed on every replica", loops)
            for c, (n, h) in zip(callers, seen):
                after = [call for call in c.calls[n:] if call[0] >= committed]
                figures.calls_after += len(after)
                figures.stale_allows += sum(1 for call in after if call[2])
                first_refused = next(end for _, end, allowed in c.calls[n:] if not allowed)
                figures.refusal_ms.append(max(0.0, first_refused - committed) * 1000)
                figures.notice_ms.append((c.heard[h] - committed) * 1000)
            heard = [len(c.heard) for c in callers]
            grant = await asyncio.to_thread(admin.add_grant, f"user:{CALLER}", f"tool:{TOOL}")
            # The grant's own list_changed must arrive before the next revoke, or it would be taken for its notice.
            await _until(lambda: all(c.allowed_now() and len(c.heard) > h for c, h in zip(callers, heard)),
                         "allowing again and list_changed on every replica", loops)
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        engine.dispose()
    return figures


@asynccontextmanager
async def _client(url: str, token: str, on_message=None):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    options = {"message_handler": on_message} if on_message else {}
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60, read=None)) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", **options) as client,
    ):
        yield client


# -- (b) throughput ---------------------------------------------------------------


@dataclass
class Throughput:
    calls_per_s: float
    cpu: dict[str, float]  # seconds: replicas, database, clients
    wall_s: float


def _backend_cpu(engine, seen: dict[int, float]) -> None:
    """Note the CPU seconds so far of every backend on the benchmark's database but this one."""
    from sqlalchemy import text

    with engine.connect() as conn:
        pids = conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalars()
        for pid in pids:
            seen[int(pid)] = max(seen.get(int(pid), 0.0), _cpu_seconds(int(pid)))


async def _watch_backends(engine, seen: dict[int, float], stop: asyncio.Event) -> None:
    # Sampled four times a second during the run: a replica's pool opens and
    # closes overflow connections under load, and a backend gone before the
    # last look would take its CPU time with it.
    while not stop.is_set():
        await asyncio.to_thread(_backend_cpu, engine, seen)
        await asyncio.sleep(0.25)


async def throughput(stack: AsyncExitStack, replicas: list[Replica], url: str, token: str, clients: int, seconds: float) -> Throughput:
    """`clients` clients spread over `replicas`, each calling in a loop for `seconds`."""
    sessions = [await stack.enter_async_context(sdk_client(replicas[i % len(replicas)].url, token)) for i in range(clients)]
    for s in sessions:  # warm up every session, pool and cache
        for _ in range(5):
            await s.call_tool(TOOL, {})
    counts = [0] * clients

    async def loop(i: int, until: float) -> None:
        while time.perf_counter() < until:
            result = await sessions[i].call_tool(TOOL, {})
            if result.is_error:
                raise RuntimeError(f"a throughput call was refused: {result.content[0].text}")
            counts[i] += 1

    from sqlalchemy import create_engine

    engine = create_engine(url)
    before: dict[int, float] = {}
    await asyncio.to_thread(_backend_cpu, engine, before)
    seen = dict(before)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_backends(engine, seen, stop))
    cpu_before = {"replicas": sum(r.cpu_seconds() for r in replicas), "clients": time.process_time()}
    started = time.perf_counter()
    await asyncio.gather(*(loop(i, started + seconds) for i in range(clients)))
    wall = time.perf_counter() - started
    cpu = {"replicas": sum(r.cpu_seconds() for r in replicas) - cpu_before["replicas"],
           "clients": time.process_time() - cpu_before["clients"]}
    stop.set()
    await watcher
    engine.dispose()
    # A backend that started during the run counts from zero.
    cpu["database"] = sum(last - before.get(pid, 0.0) for pid, last in seen.items())
    return Throughput(sum(counts) / wall, cpu, wall)


# -- the run ------------------------------------------------------------------------


async def _bench(opts) -> None:
    count = opts.revocations or (5 if opts.quick else 50)
    clients = 3 if opts.quick else 6
    seconds = 2.0 if opts.quick else 15.0
    warmup, pairs = (10, 50) if opts.quick else (100, 1000)
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-replicas-") as tmp, postgres_database(opts.database) as pg:
        home = Path(tmp) / "home"
        (home / "workspace").mkdir(parents=True)
        (home / "workspace" / "notes.txt").write_text("benchmark\n")
        sqlite = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        tokens, grant = prepare(pg, opts.grants)
        seeded = time.perf_counter() - t0
        sqlite_tokens, _ = prepare(sqlite, 0)
        async with AsyncExitStack() as stack:
            t0 = time.perf_counter()
            replicas = await stack.enter_async_context(serving([pg, pg, pg], home, "postgres"))
            started = time.perf_counter() - t0
            memory = [_memory_mib(r.proc.pid) for r in replicas]
            revoked = await revocations(stack, replicas, pg, tokens[CALLER], grant, count)
            memory_after = [_memory_mib(r.proc.pid) for r in replicas]
            one = await throughput(stack, replicas[:1], pg, tokens[WORKER], clients, seconds)
            three = await throughput(stack, replicas, pg, tokens[WORKER], clients, seconds)
            (lite,) = await stack.enter_async_context(serving([sqlite], home, "sqlite"))
            on_pg = await stack.enter_async_context(sdk_client(replicas[0].url, tokens[WORKER]))
            on_lite = await stack.enter_async_context(sdk_client(lite.url, sqlite_tokens[WORKER]))
            await time_pairs(on_pg, on_lite, warmup, _timed_call)
            pg_times, lite_times = await time_pairs(on_pg, on_lite, pairs, _timed_call)

    print(f"three mcp-acl replicas on one PostgreSQL; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    size = f"{opts.grants + 2:,} grants" + (f" (bench/decide.py's world, seeded in {seeded:.1f} s)" if opts.grants else "")
    print(f"policy: {size}; replicas ready in {started:.1f} s; "
          f"memory per replica {min(memory):.0f}-{max(memory):.0f} MiB at start, {min(memory_after):.0f}-{max(memory_after):.0f} MiB after (a)")
    print(f"(a) revoke commit → each replica, {count} revocations × {len(replicas)} replicas, a caller looping on each")
    print(f"{'':<22}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, times in (("first refusal", revoked.refusal_ms), ("tools/list_changed", revoked.notice_ms)):
        print(f"{label:<22}{statistics.median(times):>9.1f}{p99(times):>9.1f}{max(times):>9.1f}")
    print(f"stale allows: {revoked.stale_allows} of {revoked.calls_after} calls started after the commit returned")
    print(f"(b) {clients} clients calling {TOOL} for {seconds:.0f} s each run")
    for label, run in (("one replica", one), ("three replicas", three)):
        spent = sum(run.cpu.values())
        print(f"{label:<15} {run.calls_per_s:>7.0f} calls/s  {run.calls_per_s / os.cpu_count():>6.0f} per core  "
              f"CPU: replicas {run.cpu['replicas']:.1f} s, database {run.cpu['database']:.1f} s "
              f"({100 * run.cpu['database'] / max(spent, 1e-9):.0f}%), clients {run.cpu['clients']:.1f} s")
    print(f"three over one: {three.calls_per_s / one.calls_per_s:.2f}")
    pg_median, lite_median = statistics.median(pg_times), statistics.median(lite_times)
    print(f"one replica tools/call, {pairs} pairs in turn: PostgreSQL median {pg_median:.2f} ms (p99 {p99(pg_times):.2f}), "
          f"SQLite median {lite_median:.2f} ms (p99 {p99(lite_times):.2f})")
    print(f"ratio {pg_median / lite_median:.2f}")


async def _timed_call(client) -> float:
    started = time.perf_counter()
    result = await client.call_tool(TOOL, {})
    elapsed = (time.perf_counter() - started) * 1000
    if result.is_error:
        raise RuntimeError(f"the benchmark call failed: {result.content[0].text}")
    return elapsed


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--database", help="an empty PostgreSQL database (default: a new one on MCP_ACL_TEST_POSTGRES_URL)")
    parser.add_argument("--grants", type=int, default=0, help="this many more grants (bench/decide.py's world), e.g. 100000")
    parser.add_argument("--revocations", type=int, help="revocations to time (default 50; 5 with --quick)")
    asyncio.run(_bench(parser.parse_args()))


if __name__ == "__main__":
    main()
