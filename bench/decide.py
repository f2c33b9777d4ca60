"""Decisions per second of mcp-acl's engine beside pycasbin's FastEnforcer.

    python bench/decide.py            # 10,000 users, 1,000 roles, 100,000 grants
    python bench/decide.py --quick    # small sizes, a smoke test of the script

Both engines get the same RBAC world (users in roles, grants mostly on roles)
and answer the same questions in the same run. Our engine gets every grant,
wildcards, conditions, denies and expiries included; casbin gets the grants
it can express as plain policy lines (unconditional, exact target, no expiry)
with a deny-overrides effect, and FastEnforcer filters its lines by the
requested object. The engines must agree on every question that only plain
grants decide. Then our per-decision cost is measured as the grants grow.
The last line printed is `ratio N`: our throughput over casbin's.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, not an installed copy

from mcp_acl.policy import Effect, Grant, Identity, compile_policy, decide  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
TOOLS_PER_SERVICE = 50
GRANTS_PER_TOOL = 20  # the catalogue grows with the grants, so each question meets a similar number
CONDITIONS = ("args.size < 100", 'args.path.startsWith("reports/")', '"role0" in user.roles')
CASBIN_MODEL = """\
[request_definition]
r = sub, obj

[policy_definition]
p = sub, obj, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj
"""


@dataclass
class World:
    """Users in roles, grants, and the questions to ask of both engines."""

    grants: list[Grant]
    members: dict[str, list[str]]
    plain: set[int] = field(default_factory=set)  # ids of grants casbin can express
    questions: list[tuple[str, str, dict]] = field(default_factory=list)  # (user, target, args)


def build_world(users: int, roles: int, grants: int, questions: int, seed: int = 7) -> World:
    """A seeded RBAC world: grants 90% on roles, 2% wildcards, 5% conditional, 5% denies."""
    rnd = random.Random(seed)
    tools = max(TOOLS_PER_SERVICE, grants // GRANTS_PER_TOOL)
    services = max(1, tools // TOOLS_PER_SERVICE)
    user_names = [f"u{i}" for i in range(users)]
    role_names = [f"role{i}" for i in range(roles)]
    members = {u: rnd.sample(role_names, rnd.randint(1, min(4, roles))) for u in user_names}
    holders: dict[str, list[str]] = {}
    for user, its_roles in members.items():
        for role in its_roles:
            holders.setdefault(role, []).append(user)

    def a_tool() -> str:
        return f"svc{rnd.randrange(services)}.op{rnd.randrange(TOOLS_PER_SERVICE)}"

    world = World([], members)
    for gid in range(1, grants + 1):
        principal = f"user:{rnd.choice(user_names)}" if rnd.random() < 0.10 else f"role:{rnd.choice(role_names)}"
        wild = rnd.random() < 0.02
        target = f"tool:svc{rnd.randrange(services)}.*" if wild else f"tool:{a_tool()}"
        condition = rnd.choice(CONDITIONS) if rnd.random() < 0.05 else None
        effect = Effect.DENY if rnd.random() < 0.05 else Effect.ALLOW
        expires = NOW + timedelta(days=rnd.choice((-30, 30))) if rnd.random() < 0.01 else None
        world.grants.append(Grant(gid, principal, effect, target, condition, expires))
        if not (wild or condition or expires):
            world.plain.add(gid)
    for _ in range(questions):
        if rnd.random() < 0.5:  # a question some grant is about
            g = rnd.choice(world.grants)
            kind, name = g.principal.split(":", 1)
            user = name if kind == "user" else rnd.choice(holders.get(name) or user_names)
            target = g.target.replace("*", f"op{rnd.randrange(TOOLS_PER_SERVICE)}")
        else:  # anyone, anything
            user, target = rnd.choice(user_names), f"tool:{a_tool()}"
        args = {"size": rnd.randrange(200), "path": rnd.choice(("reports/q3.md", "tmp/scratch"))}
        world.questions.append((user, target, args))
    return world


def casbin_enforcer(world: World, folder: Path):
    """A FastEnforcer loaded from a model file and a CSV policy, filtering lines by object."""
    import casbin

    (folder / "model.conf").write_text(CASBIN_MODEL)
    lines = [f"p, {g.principal}, {g.target}, {g.effect.value}" for g in world.grants if g.id in world.plain]
    lines += [f"g, user:{u}, role:{r}" for u, roles in world.members.items() for r in roles]
    (folder / "policy.csv").write_text("\n".join(lines) + "\n")
    return casbin.FastEnforcer(str(folder / "model.conf"), str(folder / "policy.csv"), cache_key_order=[1])


@dataclass
class Timing:
    """One engine's pass over the questions."""

    per_second: float
    median_us: float
    p99_us: float


CHUNK = 250  # questions per timed slice


def _slice(ask, chunk) -> tuple[float, list[int]]:
    # CPU time of the whole slice (other jobs on a shared machine disturb it
    # less than the wall clock) and the wall-clock time of each call.
    clock = time.perf_counter_ns
    spent = []
    cpu = time.process_time()
    for question in chunk:
        t0 = clock()
        ask(question)
        spent.append(clock() - t0)
    return time.process_time() - cpu, spent


def measure(engines: dict, rounds: int) -> dict[str, Timing]:
    """Each engine's figures over `rounds` rounds; in each, every engine makes one whole pass.

    `engines` maps a label to (ask, questions), the questions already in the
    form the engine takes, so no conversion is timed. Every slice of the
    questions is timed in every round and its fastest round counts, as does
    each call's fastest round for the latencies: on a shared machine that
    keeps the other jobs' bursts out of both engines' figures alike. The
    collector is paused, as `timeit` does, so neither engine pays for
    collecting the other's objects.
    """
    chunks = {label: [qs[i : i + CHUNK] for i in range(0, len(qs), CHUNK)] for label, (_, qs) in engines.items()}
    cpu = {label: [float("inf")] * len(chunks[label]) for label in engines}
    calls: dict[str, list[list[int]]] = {label: [[] for _ in chunks[label]] for label in engines}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for label, (ask, _) in engines.items():
                for i, chunk in enumerate(chunks[label]):
                    seconds, spent = _slice(ask, chunk)
                    cpu[label][i] = min(cpu[label][i], seconds)
                    best = calls[label][i]
                    calls[label][i] = spent if not best else list(map(min, best, spent))
    finally:
        gc.enable()
    timings = {}
    for label, (_, questions) in engines.items():
        spent = sorted(ns for chunk in calls[label] for ns in chunk)
        timings[label] = Timing(
            len(questions) / max(sum(cpu[label]), 1e-9),
            statistics.median(spent) / 1e3,
            spent[int(len(spent) * 0.99)] / 1e3,
        )
    return timings


def _row(label: str, t: Timing) -> str:
    return f"{label:<28}{t.per_second:>14,.0f}{t.median_us:>12.1f}{t.p99_us:>10.1f}"


def our_engine(world: World, questions=None):
    """(ask, questions as our engine takes them, seconds compiling took)."""
    t0 = time.perf_counter()
    policy = compile_policy(1, world.grants, world.members)
    took = time.perf_counter() - t0
    identities = {u: Identity(u) for u in world.members}
    prepared = [(identities[u], target, args) for u, target, args in questions or world.questions]
    return (lambda q: decide(policy, q[0], q[1], q[2], NOW)), prepared, took


def compare(world: World, rounds: int) -> float:
    """Both engines on the same questions; print their figures and return the ratio."""
    ours, our_questions, compile_s = our_engine(world)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        enforcer = casbin_enforcer(world, Path(tmp))
        load_s = time.perf_counter() - t0
    theirs = lambda q: enforcer.enforce(q[0], q[1])  # noqa: E731
    their_questions = [(f"user:{u}", target) for u, target, _ in world.questions]
    print(f"load: mcp-acl compile_policy {compile_s:.2f} s; casbin FastEnforcer {load_s:.2f} s "
          f"({len(world.plain):,} plain lines)")

    # The first question of each user, on a fresh policy: the identity is prepared on the way.
    firsts = list({q[0]: q for q in reversed(world.questions)}.values())
    fresh, fresh_questions, _ = our_engine(world, firsts)
    cold = measure({"cold": (fresh, fresh_questions)}, 1)["cold"]

    checked = agreed = 0
    for mine, theirs_q in zip(our_questions, their_questions):  # this also warms both engines
        decision = ours(mine)
        if all(gid in world.plain for gid in decision.considered):
            checked += 1
            agreed += decision.allowed == theirs(theirs_q)
    print(f"agreement on plain-RBAC questions: {agreed:,}/{checked:,} ({100 * agreed / max(checked, 1):.1f}%)")

    best = measure({"ours": (ours, our_questions), "casbin": (theirs, their_questions)}, rounds)
    print(f"{'engine':<28}{'decisions/s':>14}{'median µs':>12}{'p99 µs':>10}")
    print(_row("mcp-acl decide", best["ours"]))
    print(_row("pycasbin FastEnforcer", best["casbin"]))
    print(_row("mcp-acl, identity's first", cold))
    return best["ours"].per_second / best["casbin"].per_second


def flatness(title: str, shapes: list[tuple[int, int, int]], questions: int, rounds: int) -> None:
    """Our per-decision cost for each (users, roles, grants), and how many grants a decision met."""
    print(f"\n{title}")
    print(f"{'users':>8}{'roles':>7}{'grants':>10}{'matched':>9}{'decisions/s':>14}{'median µs':>12}{'p99 µs':>10}")
    for users, roles, grants in shapes:
        world = build_world(users, roles, grants, questions)
        ours, asked, _ = our_engine(world)
        matched = statistics.mean(len(ours(q).considered) for q in asked)  # also warms up
        t = measure({"ours": (ours, asked)}, rounds)["ours"]
        print(f"{users:>8,}{roles:>7,}{grants:>10,}{matched:>9.2f}"
              f"{t.per_second:>14,.0f}{t.median_us:>12.1f}{t.p99_us:>10.1f}")


def quota_step(world: World, rounds: int) -> None:
    """decide() alone, and decide() plus the admission's quota step, with a limit on every tenth allow.

    The step (policy/quotas.py `allowances`) is pure: it finds the grant a
    call is counted against. Counting it is SQL (bench/quota.py measures that).
    """
    from dataclasses import replace

    from mcp_acl.policy.quotas import allowances

    limited = [replace(g, limit="100/day") if g.effect is Effect.ALLOW and g.id % 10 == 0 else g for g in world.grants]
    policy = compile_policy(1, limited, world.members)
    identities = {u: Identity(u) for u in world.members}
    asked = [(identities[u], target, args) for u, target, args in world.questions]

    def with_step(q):
        decision = decide(policy, q[0], q[1], q[2], NOW)
        return allowances(policy, q[0], q[1], q[2], NOW, decision)

    counted = sum(bool(with_step(q)) for q in asked)  # also warms up
    best = measure({"decide": (lambda q: decide(policy, q[0], q[1], q[2], NOW), asked), "step": (with_step, asked)}, rounds)
    print(f"\nquotas: a limit on every tenth allow ({policy.limited_grants:,} grants); {counted:,} of {len(asked):,} questions are counted")
    print(f"{'':<28}{'decisions/s':>14}{'median µs':>12}{'p99 µs':>10}")
    print(_row("decide", best["decide"]))
    print(_row("decide + quota step", best["step"]))


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and the growth tables; print `ratio N` last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--users", type=int)
    parser.add_argument("--roles", type=int)
    parser.add_argument("--grants", type=int)
    parser.add_argument("--questions", type=int)
    parser.add_argument("--rounds", type=int, help="passes per engine; the fastest counts")
    opts = parser.parse_args(argv)
    users = opts.users or (500 if opts.quick else 10_000)
    roles = opts.roles or (50 if opts.quick else 1_000)
    grants = opts.grants or (2_000 if opts.quick else 100_000)
    questions = opts.questions or (500 if opts.quick else 20_000)
    rounds = opts.rounds or (1 if opts.quick else 5)
    print(f"world: {users:,} users, {roles:,} roles, {grants:,} grants, {questions:,} questions, "
          f"best of {rounds} round(s)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"Python {sys.version.split()[0]}, pycasbin {version('pycasbin')}")
    ratio = compare(build_world(users, roles, grants, questions), rounds)
    sizes = [max(1, grants // 100), max(1, grants // 10), grants]
    flatness(
        "mcp-acl as grants grow, the same shape at each size (users = grants/10, roles = grants/100):",
        [(max(1, n * users // grants), max(1, n * roles // grants), n) for n in sizes], questions, rounds,
    )
    flatness(
        f"mcp-acl as grants grow, with {users:,} users and {roles:,} roles throughout:",
        [(users, roles, n) for n in sizes], questions, rounds,
    )
    quota_step(build_world(users, roles, grants, questions), rounds)
    print(f"ratio {ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
