"""Start-up time of the `mcp-acl` commands an administrator types, beside `python -c pass`.

    python bench/cli.py            # 15 rounds
    python bench/cli.py --quick    # 3 rounds, a smoke test of the script

Each command runs as a new process (`python -m mcp_acl …`, this checkout's
code) against a demo database in a temporary MCP_ACL_HOME, and is timed by
wall clock from start to exit. The runs are interleaved: every round runs
the baseline and each command once, in the same order, so that other jobs
on a shared machine slow them alike. Each row is the median of its rounds.
`grant` adds a grant and `revoke` removes that same grant in the same
round, so the policy is the same in every round. The last line printed is
`ratio N`: the slowest command's median over the baseline's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
BASELINE = "python -c pass"
COMMANDS = ("mcp-acl --help", "mcp-acl check", "mcp-acl grant", "mcp-acl revoke")


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds the process took, and its standard output; the run must succeed (exit 0 or 1)."""
    start = time.perf_counter()
    # Run from the checkout: `python -m` looks in the working directory first.
    done = subprocess.run(argv, env=env, cwd=CHECKOUT, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return took, done.stdout


def _round(env: dict[str, str], times: dict[str, list[float]]) -> None:
    cli = [sys.executable, "-m", "mcp_acl"]
    times[BASELINE].append(_timed([sys.executable, "-c", "pass"], env)[0])
    times["mcp-acl --help"].append(_timed([*cli, "--help"], env)[0])
    times["mcp-acl check"].append(_timed([*cli, "check", "user:alice", "tool:files.read",
                                          "--args", '{"path": "reports/q3.md"}'], env)[0])
    took, grant_id = _timed([*cli, "grant", "user:bob", "tool:files.read", "--note", "bench"], env)
    times["mcp-acl grant"].append(took)
    times["mcp-acl revoke"].append(_timed([*cli, "revoke", grant_id.strip()], env)[0])


def main() -> None:
    """Seed a demo database, time the rounds, print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, a smoke test")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of interleaved runs")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-") as home:
        env = dict(os.environ, MCP_ACL_HOME=home, PYTHONPATH=str(CHECKOUT))
        env.pop("MCP_ACL_DATABASE_URL", None)
        subprocess.run([sys.executable, "-m", "mcp_acl", "demo"], env=env, cwd=CHECKOUT, capture_output=True, check=True)
        times: dict[str, list[float]] = {name: [] for name in (BASELINE, *COMMANDS)}
        _round(env, times)  # warm the file cache and the bytecode; not counted
        times = {name: [] for name in times}
        for _ in range(rounds):
            _round(env, times)
    medians = {name: statistics.median(found) for name, found in times.items()}
    print(f"process start-up to exit, {rounds} interleaved rounds, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'command':<18}{'median ms':>10}{'min ms':>9}{'max ms':>9}")
    for name, found in times.items():
        print(f"{name:<18}{medians[name] * 1000:>10.0f}{min(found) * 1000:>9.0f}{max(found) * 1000:>9.0f}")
    slowest = max(COMMANDS, key=medians.__getitem__)
    print(f"slowest: {slowest}, {medians[slowest] / medians[BASELINE]:.1f} times the baseline")
    print(f"ratio {medians[slowest] / medians[BASELINE]:.1f}")


if __name__ == "__main__":
    main()
