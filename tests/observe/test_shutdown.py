"""A graceful shutdown of a real `mcp-acl serve` process, on SIGTERM and SIGINT.

A slow tool (it waits for a file the test writes) is in flight when the
signal arrives: it must finish and its answer reach the caller, while a
new request is told 503; then the sessions are closed and the process
exits 0.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from sqlalchemy import select

from gateway.harness import HEADERS, INIT, connect, sqlite_world, text_of  # noqa: F401 (fixture)
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from tests.cli.test_serve import read_until

SLOW_TOOL = '''
import time
from pathlib import Path

from mcp_acl.gateway.specs import ToolSpec

SCHEMA = {"type": "object", "properties": {"flags": {"type": "string"}}, "required": ["flags"]}


def wait(args, ctx):
    flags = Path(args["flags"])
    (flags / "started").touch()
    deadline = time.monotonic() + 120
    while not (flags / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "finished"


def load(config):
    return [ToolSpec(name="slow.wait", description="Wait until released.", input_schema=SCHEMA, handler=wait)]
'''


def start_server(world, env: dict[str, str], tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    tools = tmp_path / "slow-tools"
    tools.mkdir()
    (tools / "slow.py").write_text(SLOW_TOOL)
    PolicyAdmin(world.engine, actor="test").add_grant("role:analyst", "tool:slow.wait")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--database", world.database_url, *extra],
        env={**env, "MCP_ACL_TOOLS_PATH": str(tools)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    banner = read_until(proc, [], "mcp-acl serving")
    return proc, re.search(r"http://127\.0\.0\.1:\d+/mcp", banner).group(0)


async def wait_for(check, what: str, tries: int = 1500) -> None:
    for _ in range(tries):
        if await check():
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"never saw {what}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_running_call_finishes_after_the_signal_while_new_requests_get_503(sqlite_world, subprocess_env, tmp_path, sig):
    proc, url = start_server(sqlite_world, subprocess_env, tmp_path)
    flags = tmp_path / "flags"
    flags.mkdir()
    token = sqlite_world.token("alice")
    base = url.removesuffix("/mcp")
    seen = {}

    async def scenario():
        async with connect(url, token) as alice, httpx2.AsyncClient(timeout=30) as http:
            # As agents do: list first (the SDK client would otherwise list after the call, a new request).
            await alice.list_tools()

            async def slow_call():
                seen["slow"] = await alice.call_tool("slow.wait", {"flags": str(flags)})

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                await wait_for(lambda: _exists(flags / "started"), "the slow call start")
                proc.send_signal(sig)

                async def draining():
                    seen["ready"] = await http.get(f"{base}/readyz")
                    return seen["ready"].status_code == 503

                await wait_for(draining, "/readyz turn 503")
                auth = {**HEADERS, "Authorization": f"Bearer {token}"}
                seen["new_session"] = await http.post(url, json=INIT, headers=auth)
                call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "files.list", "arguments": {}}}
                seen["new_call"] = await http.post(url, json=call, headers={**auth, "Mcp-Protocol-Version": "2026-07-28"})
                seen["still_running"] = proc.poll() is None
                (flags / "release").touch()

    anyio.run(scenario)
    code = proc.wait(timeout=60)
    _, stderr = proc.communicate(timeout=30)
    assert code == 0, stderr
    assert text_of(seen["slow"]) == "finished" and not seen["slow"].is_error
    assert seen["still_running"]
    assert seen["ready"].json() == {"status": "unavailable", "reasons": ["shutting down"]}
    for refused in (seen["new_session"], seen["new_call"]):
        assert refused.status_code == 503 and refused.json()["error"] == "shutting_down"
        assert refused.headers["retry-after"] == "1"
    with sqlite_world.engine.connect() as conn:
        rows = list(conn.execute(select(t.sessions.c.subject, t.sessions.c.end_reason)))
    assert rows and all(reason == "closed" for _, reason in rows)
    # The call that ran to its end has its outcome in the audit log.
    [decision] = sqlite_world.audit_rows(kind="decision", target="tool:slow.wait")
    assert decision.decision == "allow"
    assert [row.outcome for row in sqlite_world.audit_rows(kind="outcome", ref_id=decision.id)] == ["ok"]


def test_a_call_still_running_after_the_grace_period_does_not_hold_the_process(sqlite_world, subprocess_env, tmp_path):
    proc, url = start_server(sqlite_world, subprocess_env, tmp_path, "--shutdown-grace", "0.5")
    flags = tmp_path / "flags"
    flags.mkdir()

    async def scenario():
        async with connect(url, sqlite_world.token("alice")) as alice:
            with anyio.move_on_after(120):
                async with anyio.create_task_group() as tg:
                    async def slow_call():
                        try:
                            await alice.call_tool("slow.wait", {"flags": str(flags)})
                        except Exception:
                            pass  # the server went away: expected here
                        tg.cancel_scope.cancel()

                    tg.start_soon(slow_call)
                    await wait_for(lambda: _exists(flags / "started"), "the slow call start")
                    proc.send_signal(signal.SIGTERM)
                    await anyio.to_thread.run_sync(proc.wait, 60)
                    tg.cancel_scope.cancel()

    try:
        anyio.run(scenario)
        assert proc.wait(timeout=60) == 0
    finally:
        (flags / "release").touch()  # the tool's thread, if it is still waiting somewhere
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


async def _exists(path: Path) -> bool:
    return path.exists()
