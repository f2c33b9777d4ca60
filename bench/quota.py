"""The cost of a quota-checked admission beside a plain one, on a real database.

    python bench/quota.py                       # SQLite in a temporary folder
    python bench/quota.py --database URL        # e.g. a PostgreSQL database (its tables are created)
    python bench/quota.py --quick               # a smoke test of the script

An admission is what the gateway does before a tool runs: decide on the
compiled policy, then commit the audit row (audit/appender.py). A
quota-checked admission also works out which limited grant the call is
counted against (policy/quotas.py) and moves its counter in the same
transaction (store/usage.py). Both kinds run against the same database and
policy, interleaved round by round; the fastest round of each counts.
The last line printed is `ratio N`: a quota-checked admission's median
cost over a plain one's (1.0 would be free).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, not an installed copy

from mcp_acl.audit import AuditLog  # noqa: E402
from mcp_acl.gateway.quotas import quota_charge  # noqa: E402
from mcp_acl.policy import Effect, Identity, decide  # noqa: E402
from mcp_acl.store import PolicyAdmin, PolicyLoader, make_engine, upgrade  # noqa: E402
from mcp_acl.store.lookup import one_connection  # noqa: E402

USERS = 50


def _world(url: str, grants: int) -> tuple:
    engine = make_engine(url)
    upgrade(engine)
    admin = PolicyAdmin(engine, actor="bench")
    admin.add_role("staff")
    for i in range(USERS):
        admin.add_user(f"u{i}", ["staff"])
    # Filler grants on other tools, so the policy is not trivially small.
    for i in range(grants):
        admin.add_grant("role:staff", f"tool:svc{i % 50}.op{i}", Effect.DENY if i % 20 == 0 else Effect.ALLOW)
    admin.add_grant("role:staff", "tool:plain.read")
    admin.add_grant("role:staff", "tool:limited.read", limit="1000000000/day", rate="1000000000/min")
    return engine, PolicyLoader(engine).current()


def _admit(audit: AuditLog, policy, identity: Identity, target: str, now: datetime) -> bool:
    # What Invoker._admit_on does for one call, minus the session check and span.
    decision = decide(policy, identity, target, {}, now)
    quota = None
    if decision.allowed:
        decision, quota = quota_charge(policy, identity, target, {}, now, decision)
    extra = {"quota": quota} if quota is not None else {}
    with one_connection(audit.engine):
        audit.record_decision(
            session_id=None, identity=identity, action="tools/call", target=target, args={},
            decision=decision, latency_ms=0.0, still_current=True, **extra,
        )
    return decision.allowed and (quota is None or quota.refusal is None)


def _round(audit: AuditLog, policy, target: str, calls: int) -> list[float]:
    identities = [Identity(f"u{i}") for i in range(USERS)]
    spent = []
    gc.disable()
    try:
        for n in range(calls):
            now = datetime.now(timezone.utc)
            t0 = time.perf_counter()
            if not _admit(audit, policy, identities[n % USERS], target, now):
                raise SystemExit(f"{target} was refused: the benchmark's policy is wrong")
            spent.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return spent


def main(argv: list[str] | None = None) -> int:
    """Measure both kinds of admission; print `ratio N` last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--database", metavar="URL", help="a database to use (default: SQLite in a temporary folder)")
    parser.add_argument("--calls", type=int, help="admissions per round and kind")
    parser.add_argument("--rounds", type=int, help="rounds; the fastest of each kind counts")
    parser.add_argument("--grants", type=int, help="filler grants on other tools")
    opts = parser.parse_args(argv)
    calls = opts.calls or (200 if opts.quick else 2_000)
    rounds = opts.rounds or (1 if opts.quick else 5)
    grants = opts.grants if opts.grants is not None else (100 if opts.quick else 2_000)
    with tempfile.TemporaryDirectory() as tmp:
        url = opts.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine, policy = _world(url, grants)
        audit = AuditLog(engine)
        print(f"database: {engine.dialect.name}; {USERS} users, {grants + 2:,} grants; {calls:,} admissions per round, best of {rounds}")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}")
        best: dict[str, list[float]] = {}
        for _ in range(rounds):
            for label, target in (("plain", "tool:plain.read"), ("quota-checked", "tool:limited.read")):
                spent = _round(audit, policy, target, calls)
                if label not in best or sum(spent) < sum(best[label]):
                    best[label] = spent
        engine.dispose()
    print(f"{'admission':<28}{'per second':>12}{'median µs':>12}{'p99 µs':>10}")
    for label, spent in best.items():
        ordered = sorted(spent)
        print(f"{label:<28}{len(spent) / sum(spent):>12,.0f}{statistics.median(ordered) * 1e6:>12.1f}{ordered[int(len(ordered) * 0.99)] * 1e6:>10.1f}")
    extra = statistics.median(best["quota-checked"]) - statistics.median(best["plain"])
    print(f"a quota check adds {extra * 1e6:.1f} µs (median) to an admission")
    # Medians: on a shared machine the other jobs' bursts swamp a sum.
    print(f"ratio {statistics.median(best['quota-checked']) / statistics.median(best['plain']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
