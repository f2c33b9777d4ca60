"""Benchmark: what the bearer guard pays per request for a personal access token, beside a JWT.

    python bench/personal_token.py            # 20,000 requests of each kind
    python bench/personal_token.py --quick    # 300, a smoke test of the script

In one process, on one SQLite file (WAL, as `mcp-acl serve` opens it), the
work the bearer guard does for every HTTP request before the MCP layer sees
it: `verifier.verify(token)` then the deny-list check of its `jti`, wired
as the app wires them (the gateway's standing connection, so both reads
run on the event loop when nothing has to wait).

- jwt: an access token from the embedded issuer; after its first request
  the verifier answers from its cache (the signature is not checked again),
  so what is left is the cache lookup and the deny-list read.
- personal: a personal token, looked up by its digest on every request
  (never cached, only memoised until the next commit).
- personal, worker thread: the same verifier without the standing
  connection, as on PostgreSQL (and as every personal token was read
  before it moved onto the loop): the read hops to a worker thread.

Each is timed twice: `quiet` (nothing committed between two requests, so
the reads can come from the standing connection's memo) and `after a
commit` (another connection commits before each request, untimed, as the
audit's outcome writer does on a busy gateway: the memo is cleared and the
rows are read again). Requests are interleaved in runs of BATCH of a
kind (a worker thread winding down would otherwise slow the next request
on the loop), so a noisy neighbour slows them alike. The last line is `ratio N`:
the personal token's median over the JWT's, both after a commit.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402 (after the path is set)

from _timing import mint_token, p99  # noqa: E402 (bench/, the script's folder)
from mcp_acl.auth.setup import build_verifier  # noqa: E402
from mcp_acl.config import Settings  # noqa: E402
from mcp_acl.gateway.revoked import RevokedTokens  # noqa: E402
from mcp_acl.store import PolicyAdmin, make_engine, upgrade  # noqa: E402
from mcp_acl.store.lookup import standing_connection  # noqa: E402
from mcp_acl.store.personal_tokens import create  # noqa: E402

KINDS = ("jwt", "personal", "personal, worker thread")
CONDITIONS = ("quiet", "after a commit")
# Requests of one kind in a row: a worker thread's wake-ups would otherwise slow the next request on the loop.
BATCH = 50


def _door(verifier, revoked):
    """One request's work at the bearer guard: verify, then the deny-list (as auth/middleware.py does)."""

    async def request(token: str) -> float:
        started = time.perf_counter()
        verified = await verifier.verify(token)
        if await revoked.is_revoked(verified.claims["jti"]):
            raise RuntimeError("the benchmark's token was refused")
        return (time.perf_counter() - started) * 1e6

    return request


async def _measure(url: str, path: Path, requests: int) -> dict[tuple[str, str], list[float]]:
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(database_url=url)
    PolicyAdmin(engine, actor="bench").add_user("ada")
    jwt = mint_token(engine, settings, "ada")
    personal, _ = create(engine, name="bench", user="ada", client=None, expires_at=None, actor="bench")
    standing = standing_connection(engine)
    on_loop = _door(build_verifier(settings, engine, standing=standing), RevokedTokens(engine, standing))
    threaded = _door(build_verifier(settings, engine), RevokedTokens(engine))
    doors = {"jwt": (on_loop, jwt), "personal": (on_loop, personal), "personal, worker thread": (threaded, personal)}
    # Another connection (another process, as far as SQLite can tell) commits between requests.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE bench_ticks (n INTEGER)")
    times: dict[tuple[str, str], list[float]] = {(k, c): [] for k in KINDS for c in CONDITIONS}
    try:
        for door, token in doors.values():
            await door(token)  # warm: the JWT's signature, the first use's write, the connections
        for i in range(0, requests, BATCH):
            for condition in CONDITIONS:
                for kind in KINDS if i // BATCH % 2 else reversed(KINDS):
                    door, token = doors[kind]
                    for n in range(i, min(i + BATCH, requests)):
                        if condition == "after a commit":
                            other.execute("INSERT INTO bench_ticks VALUES (?)", (n,))
                        times[(kind, condition)].append(await door(token))
    finally:
        other.close()
        standing.close()
        engine.dispose()
    return times


def main() -> None:
    """Time the requests, print the medians and p99s, and the ratio last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 requests of each kind, a smoke test")
    parser.add_argument("--requests", type=int, default=20_000, help="requests of each kind and condition")
    args = parser.parse_args()
    requests = 300 if args.quick else args.requests
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-") as folder:
        path = Path(folder) / "bench.db"
        times = anyio.run(_measure, f"sqlite:///{path}", path, requests)
    print(f"bearer guard per request (verify + deny-list), SQLite, {requests} interleaved requests each, Python {sys.version.split()[0]}")
    medians = {}
    for condition in CONDITIONS:
        for kind in KINDS:
            found = times[(kind, condition)]
            medians[(kind, condition)] = statistics.median(found)
            label = f"{kind}, {condition}"
            print(f"{label:<40} median {medians[(kind, condition)]:8.1f} µs   p99 {p99(found):8.1f} µs")
    ratio = medians[("personal", "after a commit")] / medians[("jwt", "after a commit")]
    print(f"ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
