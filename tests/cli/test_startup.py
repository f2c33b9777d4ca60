"""The everyday admin commands start without loading the server's heavy dependencies.

Speed itself is measured in bench/cli.py; here the cause is checked: which
packages a command has loaded by the time it exits.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Packages only serving, connecting, signing in or running an agent needs.
HEAVY = (
    "mcp", "mcp_types", "starlette", "uvicorn", "authlib", "ollama", "httpx", "httpx2", "alembic", "joserfc",
    # Metrics and traces are for `serve` alone, and only when turned on.
    "prometheus_client", "opentelemetry",
)

PROBE = """
import json, sys
from mcp_acl.cli import main
sys.argv = ["mcp-acl", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted({name.split(".")[0] for name in sys.modules})
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "loaded": loaded}) + "\\n")
"""


def loaded_by(args: list[str], env: dict[str, str]) -> tuple[int, set[str]]:
    """The exit status of `mcp-acl ARGS` in a new process and the top-level packages it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], env=env, capture_output=True, text=True, check=False,
    )
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("PROBE ")][-1]
    found = json.loads(line.removeprefix("PROBE "))
    return found["code"], set(found["loaded"])


@pytest.fixture
def demo_url(tmp_path, run_process) -> str:
    url = f"sqlite:///{tmp_path / 'acl.db'}"
    assert run_process(url, "demo").returncode == 0
    return url


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["check", "user:alice", "tool:files.read", "--args", '{"path": "reports/q3.md"}'],
        ["grant", "user:bob", "tool:files.read", "--when", 'args.path.startsWith("tmp/")'],
        ["grants"],
        ["user", "list"],
        # Without connecting: `add` that connects (the default) needs the SDK, like `approve`.
        ["upstream", "add", "tracker", "--url", "http://127.0.0.1:9/mcp", "--header", "Authorization=env:TRACKER_TOKEN", "--no-connect"],
        ["upstream", "list"],
    ],
    ids=lambda c: " ".join(c[:2]) if c[0] in ("user", "upstream") else c[0],
)
def test_admin_command_does_not_load_server_packages(command, demo_url, subprocess_env):
    args = command if command == ["--help"] else [*command, "--database", demo_url]
    code, loaded = loaded_by(args, subprocess_env)
    assert code in (0, 1)
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_revoke_does_not_load_server_packages_or_cel(demo_url, subprocess_env, run_process):
    grant_id = run_process(demo_url, "grant", "user:bob", "tool:files.read").stdout.strip()
    code, loaded = loaded_by(["revoke", grant_id, "--database", demo_url], subprocess_env)
    assert code == 0
    assert loaded.isdisjoint((*HEAVY, "cel")), sorted(loaded.intersection((*HEAVY, "cel")))


SERVE_PROBE = """
import json, sys
from mcp_acl.cli.serve import build_app, start_observing
from mcp_acl.config import Settings
from mcp_acl.store import make_engine
url, metrics = sys.argv[1], sys.argv[2] == "metrics"
start_observing("text")
build_app(Settings.from_env(url), make_engine(url), metrics=metrics)
prefixes = ("prometheus_client", "opentelemetry.sdk", "opentelemetry.exporter")
print(json.dumps(sorted({n.split(".")[0] if n.startswith("prom") else ".".join(n.split(".")[:2]) for n in sys.modules if n.startswith(prefixes)})))
"""


@pytest.mark.parametrize(("metrics", "expected"), [("off", []), ("metrics", ["prometheus_client"])])
def test_serve_loads_metrics_and_tracing_packages_only_when_turned_on(demo_url, subprocess_env, metrics, expected):
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PROBE, demo_url, metrics], env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
